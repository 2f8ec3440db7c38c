"""``keda-queue-scaler simulate MANIFEST``: drive a running scaler as KEDA and the HPA would.

This module owns the ``simulate`` subcommand, in three parts that do not mix:

* **the model** (:class:`ScaleModel`): KEDA's scale loop and executor for one ScaledObject plus
  the HPA controller, as a deterministic state machine. It does no I/O and reads no clock: every
  method takes the simulated time and the readings, and returns a timeline :class:`Row`. Tests
  drive it with a fake clock and fake readings;
* **the driver** (:func:`drive`, :class:`RemoteSource`, :class:`CompressedClock`): runs the model
  against a live scaler through :mod:`scaler.tools.remote`, on a real clock compressed by
  ``--speed``, making the calls KEDA makes, and following ``StreamIsActive`` for
  ``external-push`` triggers;
* **the command** (:func:`add_arguments`, :func:`run`): the manifest (loaded and validated by
  :mod:`scaler.check`, with its ``xxxFromEnv`` resolution), the table, ``--json`` and ``--plot``.

Times are simulated seconds from the start (the ScaledObject's creation). Metric values and
targets are milli-units, as the HPA compares them.

What is modelled, rule by rule
==============================

KEDA (keda-protocol.md sections 1.6-1.12; KEDA's ``pkg/scaling`` sources where they are more
precise, named below)

K1. Every ``pollingInterval`` (default 30 s), the first at t=0: for every trigger (in parallel)
    ``GetMetricSpec``, then for every returned spec ``GetMetrics`` followed by ``IsActive``
    (``IsActive`` only after a successful ``GetMetrics``). A failed ``GetMetricSpec`` (or an
    empty answer) and a failed ``GetMetrics``/``IsActive`` are retried once at once, as KEDA
    rebuilds the scaler and calls again [1.6, 1.11].
K2. A trigger is active iff its ``IsActive`` said true; a failed trigger is an error and never
    active. The object is active iff any trigger is [1.7].
K3. Executor, active: with 0 replicas (or fewer than ``minReplicaCount`` while
    ``idleReplicaCount`` is set) scale to ``max(minReplicaCount, 1)`` at once and set
    ``lastActiveTime``; otherwise set ``lastActiveTime`` unless a trigger failed (KEDA then only
    marks Ready=Unknown and leaves ``lastActiveTime`` alone) [1.7, 1.11; executor
    ``scale_scaledobjects.go``].
K4. Executor, inactive: a failed trigger leaves the replicas untouched when there is no
    ``fallback`` or ``fallback.replicas`` is not 0 [1.11]. Otherwise, with ``minReplicaCount`` 0
    or ``idleReplicaCount`` set, the replicas go to ``idleReplicaCount`` (else
    ``minReplicaCount``) once ``cooldownPeriod`` (default 300 s) has passed since
    ``lastActiveTime``, or ``initialCooldownPeriod`` (default 0) since creation when never
    active [1.7]. Below ``minReplicaCount`` without ``idleReplicaCount``: scale to the minimum.
    "Passed" includes the boundary: status times have whole-second precision, so the poll exactly
    ``cooldownPeriod`` after ``lastActiveTime`` already sees it elapsed.
K5. ``external-push``: a ``StreamIsActive`` ``true`` runs K3 at once; ``false`` is ignored (KEDA
    >= 2.18). A stream that ends is reopened after 2 s, doubling to 60 s, back to 2 s after an
    OK end [1.8]. Pushes and polls of one object are serialised, as KEDA's per-object lock does.
K6. The HPA KEDA builds: one External metric ``s{index}-{name}`` per spec of the first
    ``GetMetricSpec`` (a failure there means no HPA: ``simulate`` stops), target ``AverageValue``
    or ``Value`` from the trigger's ``metricType``, ``minReplicas = max(minReplicaCount, 1)``,
    ``maxReplicas = maxReplicaCount`` (default 100), ``behavior`` copied from
    ``advanced.horizontalPodAutoscalerConfig.behavior`` and left unset otherwise [1.7].
K7. Each HPA query of a metric: ``GetMetricSpec`` on every trigger, then ``GetMetrics`` +
    ``IsActive`` on the one serving the metric; with ``useCachedMetrics: true`` the last poll's
    reading is used instead (when there is one) [1.6].
K8. Values: ``metricValueFloat`` when > 0, else ``metricValue``, as milli-units truncated
    toward zero; several values of one answer are summed; a negative value counts 0 (keda#7880).
    Targets: ``targetSizeFloat`` when > 0, else ``targetSize`` [1.10].
K9. Fallback acts on the HPA path only (KEDA calls ``GetMetricsWithFallback`` from the metrics
    adapter path, not from the poll loop; keda-protocol.md 1.11 says both paths count, KEDA's
    ``scale_handler.go`` does not): each failed read of an ``AverageValue`` metric adds one to
    its failure count, a success resets it; past ``failureThreshold`` the HPA receives
    ``int(target) x replicas`` instead of an error, ``replicas`` per ``fallback.behavior``
    (``static``: ``fallback.replicas``; ``currentReplicas``; ``currentReplicasIfHigher``;
    ``currentReplicasIfLower``) (``fallback/fallback.go``: note the target's fraction is
    dropped). A failed ``GetMetricSpec`` leaves no spec to count against, so fallback never
    starts (keda#8056). ``Value`` metrics get no fallback. At 0 replicas the HPA reads nothing,
    so fallback cannot act there either.

HPA (Kubernetes ``pkg/controller/podautoscaler``: ``horizontal.go``, ``replica_calculator.go``;
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/)

H1. A sync every ``--hpa-sync`` seconds (kube-controller-manager's
    ``--horizontal-pod-autoscaler-sync-period``, default 15), the first at t=0 right after the
    first poll. The first sync records the current replica count as a recommendation.
H2. 0 replicas: scaling disabled, nothing read (KEDA owns 0 <-> 1). Above ``maxReplicas``: set to
    the maximum; below ``minReplicas``: set to the minimum (no metrics, no stabilisation).
H3. Per metric, ``AverageValue``: ``ratio = value / (target x replicas)``; within tolerance keep
    the replicas, else ``ceil(value / target)``. ``Value``: ``ratio = value / target``; within
    tolerance keep, else ``ceil(ratio x readyPods)`` with every pod ready. Within tolerance means
    ``1 - down <= ratio <= 1 + up``, both 0.1 (``--hpa-tolerance``) unless the behavior sets
    ``tolerance`` for that direction (Kubernetes >= 1.33, feature HPAConfigurableTolerance).
H4. The desired count is the maximum over the metrics read. If every metric failed, or one failed
    and the others want fewer replicas than now, the HPA does nothing this sync.
H5. No ``behavior`` (KEDA's default): the recommendation is the maximum of the recommendations of
    the last 300 s (kube-controller-manager's ``--horizontal-pod-autoscaler-downscale-
    stabilization``, ``--hpa-downscale-stabilization`` here), then clamped to
    ``[minReplicas, min(maxReplicas, max(2 x replicas, 4))]``.
H6. With ``behavior``, missing fields get the documented defaults (scaleUp: window 0, policies
    4 Pods and 100 Percent per 15 s, ``selectPolicy: Max``; scaleDown: window 300 s (the
    controller flag), 100 Percent per 15 s, ``Max``). The recommendation is the current count
    brought within [lowest recommendation in the scaleUp window, highest in the scaleDown
    window] (a window holds the recommendations strictly newer than now minus its length). Then
    the rate: scale-up limit = over the policies (Max: the largest, Min: the smallest) of
    ``start + Pods`` or ``ceil(start x (1 + Percent/100))``, scale-down limit = ``start - Pods``
    or ``int(start x (1 - Percent/100))`` (Max: the smallest, Min: the largest), where ``start``
    is the count before the HPA's own changes of the policy's period; ``Disabled`` freezes that
    direction. The result is clamped to ``[minReplicas, maxReplicas]``.
H7. Only the HPA's own changes are scale events for H6's periods; KEDA's activations and
    cooldowns are not.

Not modelled: pod start-up and readiness (every pod is ready at once, which the HPA's
missing-pod and unready-pod handling would otherwise temper), ``advanced.scalingModifiers``,
pausing, CPU/memory and non-external triggers (refused), ScaledJobs (refused), a change of the
targets after the HPA is built, and the jitter of real controllers (events here fall exactly on
the interval multiples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol, TextIO

import yaml

from scaler.errors import ManifestError, RemoteError
from scaler.tools import remote
from scaler.tools.manifest import (
    EXTERNAL_TYPES,
    SCALED_JOB,
    SCALED_OBJECT,
    Replicas,
    ScaledRef,
    load_manifest,
    resolve_from_env,
)

POLL: Final = "poll"
HPA: Final = "hpa"
PUSH: Final = "push"

AVERAGE_VALUE: Final = "AverageValue"
VALUE: Final = "Value"
PODS: Final = "Pods"
PERCENT: Final = "Percent"
SELECT_MAX: Final = "Max"
SELECT_MIN: Final = "Min"
SELECT_DISABLED: Final = "Disabled"
FALLBACK_BEHAVIORS: Final = (
    "static",
    "currentReplicas",
    "currentReplicasIfHigher",
    "currentReplicasIfLower",
)

DEFAULT_POLLING_INTERVAL: Final = 30
DEFAULT_COOLDOWN_PERIOD: Final = 300
DEFAULT_DURATION: Final = 600.0
DEFAULT_SPEED: Final = 1.0
DEFAULT_ADDRESS: Final = "localhost:9090"

EXIT_OK: Final = 0
EXIT_READ_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2

#: KEDA's StreamIsActive reconnect backoff (keda-protocol.md 1.8), simulated seconds
_STREAM_BACKOFF: Final = 2.0
_STREAM_BACKOFF_MAX: Final = 60.0


# -- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScalingPolicy:
    """One HPA scaling policy: at most ``value`` pods or percent per ``period`` seconds."""

    type: str
    value: int
    period: int

    def __str__(self) -> str:
        unit = "%" if self.type == PERCENT else ""
        return f"{self.type} {self.value}{unit}/{self.period}s"


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """``behavior.scaleUp`` or ``scaleDown``; a ``None`` window means the controller's flag."""

    stabilization_window: int | None
    select_policy: str
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None


#: Kubernetes' documented defaults (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules)
DEFAULT_SCALE_UP: Final = ScalingRules(
    0, SELECT_MAX, (ScalingPolicy(PODS, 4, 15), ScalingPolicy(PERCENT, 100, 15))
)
DEFAULT_SCALE_DOWN: Final = ScalingRules(None, SELECT_MAX, (ScalingPolicy(PERCENT, 100, 15),))


@dataclass(frozen=True, slots=True)
class Behavior:
    """The HPA's ``spec.behavior``, defaults filled in."""

    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN


@dataclass(frozen=True, slots=True)
class Fallback:
    """``spec.fallback``."""

    failure_threshold: int
    replicas: int
    behavior: str = "static"

    def replicas_for(self, current: int) -> int:
        """The replica count the synthetic metric stands for (KEDA's ``doFallback``)."""
        if self.behavior == "currentReplicas":
            return current
        if self.behavior == "currentReplicasIfHigher":
            return max(current, self.replicas)
        if self.behavior == "currentReplicasIfLower":
            return min(current, self.replicas)
        return self.replicas


@dataclass(frozen=True, slots=True)
class SimTrigger:
    """One external trigger; ``metadata`` as written (``xxxFromEnv`` unresolved)."""

    index: int
    type: str
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    metric_type: str = AVERAGE_VALUE
    use_cached_metrics: bool = False

    @property
    def push(self) -> bool:
        return self.type == "external-push"


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """What the model needs of a ScaledObject."""

    ref: ScaledRef
    replicas: Replicas
    triggers: tuple[SimTrigger, ...]
    polling_interval: int = DEFAULT_POLLING_INTERVAL
    cooldown_period: int = DEFAULT_COOLDOWN_PERIOD
    initial_cooldown_period: int = 0
    fallback: Fallback | None = None
    #: ``None``: KEDA leaves the HPA's behavior unset and the controller's legacy rules apply (H5)
    behavior: Behavior | None = None

    @property
    def hpa_min(self) -> int:
        return max(self.replicas.min, 1)

    @property
    def hpa_max(self) -> int:
        return self.replicas.max


DEFAULT_HPA_SYNC: Final = 15.0
DEFAULT_HPA_TOLERANCE: Final = 0.1
DEFAULT_DOWNSCALE_STABILIZATION: Final = 300


@dataclass(frozen=True, slots=True)
class HpaSettings:
    """The kube-controller-manager flags the HPA depends on."""

    sync_period: float = DEFAULT_HPA_SYNC
    tolerance: float = DEFAULT_HPA_TOLERANCE
    downscale_stabilization: int = DEFAULT_DOWNSCALE_STABILIZATION


@dataclass(frozen=True, slots=True)
class HpaMetric:
    """One External metric of the HPA KEDA built (K6); ``target`` in milli-units."""

    trigger: int
    name: str
    target: int
    metric_type: str = AVERAGE_VALUE

    @property
    def key(self) -> str:
        """The HPA's metric name, with KEDA's trigger prefix."""
        return f"s{self.trigger}-{self.name}"


# -- readings and the timeline -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerSample:
    """One trigger read as KEDA reads it (K1, K7).

    :param values: metric name (as ``GetMetricSpec`` gave it) to value in milli-units
    :param error: why the read failed; a failed trigger is never active
    :param spec_failed: ``GetMetricSpec`` itself failed, so no metric can count a failure (K9)
    """

    index: int
    values: Mapping[str, int] = field(default_factory=dict)
    active: bool = False
    error: str | None = None
    spec_failed: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One timeline event: what was read, and the replica count after it."""

    time: float
    event: str
    values: Mapping[str, float | None]
    active: bool | None
    before: int
    replicas: int
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "time": round(self.time, 3),
            "event": self.event,
            "metrics": dict(self.values),
            "active": self.active,
            "replicasBefore": self.before,
            "replicas": self.replicas,
            "reason": self.reason,
        }


# -- the model -----------------------------------------------------------------------------------


class ScaleModel:
    """KEDA's scale loop and executor for one ScaledObject, and its HPA (module doc, K1-H7).

    Deterministic: no I/O, no clock. The caller asks :meth:`next_event` what is due and when,
    reads what is needed, and hands the readings to :meth:`poll` or :meth:`hpa_sync`;
    :meth:`push` applies a ``StreamIsActive`` ``true``.

    :param metrics: the HPA's metrics, from the first ``GetMetricSpec`` of every trigger (K6)
    :param replicas: the scale target's replica count at t=0 (default: ``idleReplicaCount`` when
        set, else ``minReplicaCount``)
    """

    def __init__(
        self,
        spec: ObjectSpec,
        metrics: Sequence[HpaMetric],
        *,
        settings: HpaSettings | None = None,
        replicas: int | None = None,
    ) -> None:
        for metric in metrics:
            if metric.target <= 0:
                raise ValueError(f"{metric.key}: a target of {metric.target} milli-units")
        self.spec = spec
        self.metrics = tuple(metrics)
        self.settings = settings or HpaSettings()
        bounds = spec.replicas
        start = bounds.idle if bounds.idle is not None else bounds.min
        self.replicas = start if replicas is None else replicas
        self.last_active: float | None = None
        self.next_poll = 0.0
        self.next_hpa = 0.0
        self._time = 0.0
        self._failures: dict[str, int] = {}
        self._records: dict[int, TriggerSample] = {}
        self._recommendations: list[tuple[float, int]] | None = None
        self._up_events: list[tuple[float, int]] = []
        self._down_events: list[tuple[float, int]] = []

    # -- scheduling

    def next_event(self) -> tuple[float, str]:
        """The next scheduled event; a poll goes before an HPA sync due at the same time."""
        if self.next_poll <= self.next_hpa:
            return self.next_poll, POLL
        return self.next_hpa, HPA

    def push_time(self, now: float) -> float:
        """``now`` kept between the last event and the next scheduled one, so rows stay ordered
        when a push is handled just before a poll that was due earlier."""
        return max(min(now, self.next_event()[0]), self._time)

    def hpa_reads(self) -> tuple[int, ...]:
        """The triggers the next HPA sync reads afresh; empty when it reads nothing (H2, K7)."""
        if not self.spec.hpa_min <= self.replicas <= self.spec.hpa_max:
            return ()
        cached = {
            t.index for t in self.spec.triggers if t.use_cached_metrics and t.index in self._records
        }
        return tuple(sorted({m.trigger for m in self.metrics} - cached))

    # -- KEDA

    def poll(self, now: float, samples: Mapping[int, TriggerSample]) -> Row:
        """A KEDA poll at ``now`` with every trigger's reading (K1-K4)."""
        self._time = max(self._time, now)
        self.next_poll = now + self.spec.polling_interval
        values: dict[str, float | None] = {}
        errors: list[str] = []
        active = False
        for trigger in self.spec.triggers:
            sample = samples.get(trigger.index) or TriggerSample(trigger.index, error="not read")
            if trigger.use_cached_metrics:
                self._records[trigger.index] = sample
            for metric in self._metrics_of(trigger.index):
                value = sample.values.get(metric.name)
                values[metric.key] = None if value is None else value / 1000
            if sample.error is not None:
                errors.append(f"trigger {trigger.index}: {sample.error}")
            elif sample.active:
                active = True
        return self._execute(now, POLL, active, errors, values)

    def push(self, now: float, index: int) -> Row:
        """A ``true`` on trigger ``index``'s ``StreamIsActive`` (K5)."""
        now = max(now, self._time)
        self._time = now
        row = self._execute(now, PUSH, True, [], {})
        return replace(row, reason=f"trigger {index} pushed true: {row.reason}")

    def _execute(
        self,
        now: float,
        event: str,
        active: bool,
        errors: Sequence[str],
        values: Mapping[str, float | None],
    ) -> Row:
        # KEDA's RequestScale, case by case (executor/scale_scaledobjects.go)
        bounds = self.spec.replicas
        before = current = self.replicas
        if active:
            if current == 0 or (bounds.idle is not None and current < bounds.min):
                self.replicas = max(bounds.min, 1)
                self.last_active = now
                reason = f"activate {current}->{self.replicas}"
            elif errors:
                reason = "active, but a trigger failed: lastActiveTime not refreshed"
            else:
                self.last_active = now
                reason = "active"
        else:
            fallback = self.spec.fallback
            if errors and fallback is not None and fallback.replicas != 0:
                reason = "inactive and failing: replicas kept (fallback acts through the HPA)"
            elif errors and fallback is None:
                reason = "failing: replicas kept"
            elif (bounds.idle is not None and current > bounds.idle) or (
                current > 0 and bounds.min == 0
            ):
                left = self._cooldown_left(now)
                if left <= 0:
                    self.replicas = bounds.idle if bounds.idle is not None else bounds.min
                    reason = f"cooldown {current}->{self.replicas}"
                    if bounds.idle is not None:
                        reason += " (idleReplicaCount)"
                else:
                    reason = f"cooling down, {_seconds(left)} left"
            elif current < bounds.min and bounds.idle is None:
                self.replicas = bounds.min
                reason = f"below minReplicaCount {current}->{self.replicas}"
            else:
                reason = "inactive"
        if errors:
            reason += "; " + "; ".join(errors)
        return Row(now, event, values, active, before, self.replicas, reason)

    def _cooldown_left(self, now: float) -> float:
        if self.last_active is None:
            return self.spec.initial_cooldown_period - now
        return self.last_active + self.spec.cooldown_period - now

    # -- the HPA

    def hpa_sync(self, now: float, samples: Mapping[int, TriggerSample]) -> Row | None:
        """An HPA sync at ``now`` with the readings of :meth:`hpa_reads` (H1-H7).

        :returns: ``None`` when the HPA does nothing at all (0 replicas)
        """
        self._time = max(self._time, now)
        self.next_hpa = now + self.settings.sync_period
        current = self.replicas
        if self._recommendations is None:
            self._recommendations = [(now, current)]
        spec = self.spec
        if current == 0:
            return None
        if current > spec.hpa_max:
            return self._rescale(
                now, current, spec.hpa_max, {}, f"above maxReplicas {spec.hpa_max}"
            )
        if current < spec.hpa_min:
            return self._rescale(
                now, current, spec.hpa_min, {}, f"below minReplicas {spec.hpa_min}"
            )

        values: dict[str, float | None] = {}
        notes: list[str] = []
        failed: list[str] = []
        proposals: list[int] = []
        tolerated: list[str] = []
        for metric in self.metrics:
            # only useCachedMetrics triggers have records (K7)
            sample = self._records.get(metric.trigger) or samples.get(metric.trigger)
            value = self._hpa_value(metric, sample, current, notes)
            values[metric.key] = None if value is None else value / 1000
            if value is None:
                failed.append(metric.key)
                continue
            count, ratio, within = hpa_proposal(
                metric.metric_type, value, metric.target, current, self._tolerances()
            )
            proposals.append(count)
            if within and ratio != 1.0:
                tolerated.append(f"{metric.key} ratio {ratio:.2f}")
        desired = max(proposals, default=0)
        if len(failed) == len(self.metrics) or (failed and desired < current):
            notes.insert(0, f"hpa cannot read {', '.join(failed)}: replicas kept")
            return Row(now, HPA, values, None, current, current, "; ".join(notes))

        if spec.behavior is None:
            new, limit, stabilized, window = self._legacy(now, current, desired)
        else:
            new, limit, stabilized, window = self._with_behavior(now, current, desired)
        if new != current:
            extras = [limit] if limit else []
            if stabilized != desired:
                extras.append(f"stabilized, wanted {desired}")
            reason = f"hpa {current}->{new}" + (f" ({'; '.join(extras)})" if extras else "")
            self._store_event(now, current, new)
            self.replicas = new
        elif limit and stabilized != current:
            reason = f"held at {current} by {limit} (wanted {desired})"
        elif stabilized != desired:
            reason = f"stabilized at {current} (wanted {desired}; {window})"
        elif tolerated:
            reason = f"within tolerance ({', '.join(tolerated)})"
        else:
            reason = f"steady at {current}"
        return Row(now, HPA, values, None, current, self.replicas, "; ".join([reason, *notes]))

    def _rescale(
        self, now: float, current: int, new: int, values: Mapping[str, float | None], why: str
    ) -> Row:
        self._store_event(now, current, new)
        self.replicas = new
        return Row(now, HPA, values, None, current, new, f"hpa {current}->{new} ({why})")

    def _metrics_of(self, index: int) -> list[HpaMetric]:
        return [m for m in self.metrics if m.trigger == index]

    def _hpa_value(
        self, metric: HpaMetric, sample: TriggerSample | None, current: int, notes: list[str]
    ) -> int | None:
        # K9: failures count per metric, on this path only
        if sample is not None and sample.error is None:
            self._failures[metric.key] = 0
            value = sample.values.get(metric.name)
            if value is None:
                # an empty GetMetrics answer: "no matching metrics" for the HPA, not a failure
                notes.append(f"{metric.key}: no value")
            return value
        if sample is None:
            sample = TriggerSample(metric.trigger, error="not read")
        fallback = self.spec.fallback
        if sample.spec_failed or fallback is None or metric.metric_type != AVERAGE_VALUE:
            notes.append(f"{metric.key}: {sample.error}")
            return None
        failures = self._failures.get(metric.key, 0) + 1
        self._failures[metric.key] = failures
        if failures <= fallback.failure_threshold:
            notes.append(
                f"{metric.key}: {sample.error} (failure {failures} of "
                f"failureThreshold {fallback.failure_threshold})"
            )
            return None
        replicas = fallback.replicas_for(current)
        notes.append(
            f"fallback: {metric.key} failed {failures} times, "
            f"value {metric.target // 1000} x {replicas} replicas"
        )
        return (metric.target // 1000) * 1000 * replicas

    def _tolerances(self) -> tuple[float, float]:
        """``(scale-down, scale-up)`` tolerances (H3)."""
        default = self.settings.tolerance
        behavior = self.spec.behavior
        if behavior is None:
            return default, default
        down = behavior.scale_down.tolerance
        up = behavior.scale_up.tolerance
        return (default if down is None else down), (default if up is None else up)

    def _legacy(self, now: float, current: int, desired: int) -> tuple[int, str, int, str]:
        # H5: horizontal.go stabilizeRecommendation + convertDesiredReplicasWithRules
        window = self.settings.downscale_stabilization
        cutoff = now - window
        recent = [(t, r) for t, r in self._recommendations or [] if not t < cutoff]
        stabilized = max([desired, *(r for _, r in recent)])
        self._recommendations = [*recent, (now, desired)]
        scale_up_limit = int(max(2.0 * current, 4.0))
        if self.spec.hpa_max > scale_up_limit:
            maximum, why = scale_up_limit, "scale-up limit max(2x, 4)"
        else:
            maximum, why = self.spec.hpa_max, f"maxReplicas {self.spec.hpa_max}"
        label = f"downscale stabilization {window}s"
        if stabilized < self.spec.hpa_min:
            return self.spec.hpa_min, f"minReplicas {self.spec.hpa_min}", stabilized, label
        if stabilized > maximum:
            return maximum, why, stabilized, label
        return stabilized, "", stabilized, label

    def _with_behavior(self, now: float, current: int, desired: int) -> tuple[int, str, int, str]:
        # H6: horizontal.go stabilizeRecommendationWithBehaviors, then
        # convertDesiredReplicasWithBehaviorRate
        behavior = self.spec.behavior
        assert behavior is not None
        up, down = behavior.scale_up, behavior.scale_down
        up_window = up.stabilization_window or 0
        down_window = down.stabilization_window
        if down_window is None:
            down_window = self.settings.downscale_stabilization
        up_cutoff, down_cutoff = now - up_window, now - down_window
        up_bound = down_bound = desired
        for stamp, recommendation in self._recommendations or []:
            if stamp > up_cutoff:
                up_bound = min(recommendation, up_bound)
            if stamp > down_cutoff:
                down_bound = max(recommendation, down_bound)
        stabilized = min(max(current, up_bound), down_bound)
        self._recommendations = [
            (t, r)
            for t, r in self._recommendations or []
            if not (t < up_cutoff and t < down_cutoff)
        ] + [(now, desired)]
        if desired >= current:
            label = f"scaleUp window {up_window}s"
        else:
            label = f"scaleDown window {down_window}s"

        spec = self.spec
        if stabilized > current:
            limit, policy = self._rate_limit(now, current, up, scale_up=True)
            limit = max(limit, current)
            if spec.hpa_max > limit:
                maximum, why = limit, policy
            else:
                maximum, why = spec.hpa_max, f"maxReplicas {spec.hpa_max}"
            if stabilized > maximum:
                return maximum, why, stabilized, label
        elif stabilized < current:
            limit, policy = self._rate_limit(now, current, down, scale_up=False)
            limit = min(limit, current)
            if spec.hpa_min < limit:
                minimum, why = limit, policy
            else:
                minimum, why = spec.hpa_min, f"minReplicas {spec.hpa_min}"
            if stabilized < minimum:
                return minimum, why, stabilized, label
        return stabilized, "", stabilized, label

    def _rate_limit(
        self, now: float, current: int, rules: ScalingRules, *, scale_up: bool
    ) -> tuple[int, str]:
        direction = "scale-up" if scale_up else "scale-down"
        if rules.select_policy == SELECT_DISABLED:
            return current, f"{direction} disabled"
        # the change with the smallest effect: the lowest count up, the highest down
        lowest = (rules.select_policy == SELECT_MIN) == scale_up
        chosen: tuple[int, ScalingPolicy] | None = None
        for policy in rules.policies:
            added = _changes(self._up_events, now, policy.period)
            removed = _changes(self._down_events, now, policy.period)
            start = current - added + removed
            if scale_up:
                if policy.type == PODS:
                    proposed = start + policy.value
                else:
                    proposed = math.ceil(start * (1 + policy.value / 100))
            elif policy.type == PODS:
                proposed = start - policy.value
            else:
                proposed = int(start * (1 - policy.value / 100))
            if chosen is None or (proposed < chosen[0] if lowest else proposed > chosen[0]):
                chosen = (proposed, policy)
        assert chosen is not None, "validation requires at least one policy"
        return chosen[0], f"{direction} policy {chosen[1]}"

    def _store_event(self, now: float, before: int, after: int) -> None:
        # H7: storeScaleEvent keeps nothing without a behavior (the legacy rules need none)
        behavior = self.spec.behavior
        if behavior is None or before == after:
            return
        if after > before:
            events, rules, change = self._up_events, behavior.scale_up, after - before
        else:
            events, rules, change = self._down_events, behavior.scale_down, before - after
        longest = max((p.period for p in rules.policies), default=0)
        events[:] = [(t, c) for t, c in events if t > now - longest]
        events.append((now, change))


def hpa_proposal(
    metric_type: str, value: int, target: int, current: int, tolerances: tuple[float, float]
) -> tuple[int, float, bool]:
    """One metric's replica count, usage ratio and whether the tolerance kept the count (H3).

    Milli-units in, float arithmetic as the HPA's Go code does it.
    """
    down, up = tolerances
    if metric_type == VALUE:
        ratio = value / target
        if current == 0:
            return math.ceil(ratio), ratio, False
        if 1.0 - down <= ratio <= 1.0 + up:
            return current, ratio, True
        return math.ceil(ratio * current), ratio, False
    ratio = value / (target * current)
    if 1.0 - down <= ratio <= 1.0 + up:
        return current, ratio, True
    return math.ceil(value / target), ratio, False


def _changes(events: Sequence[tuple[float, int]], now: float, period: int) -> int:
    return sum(change for stamp, change in events if stamp > now - period)


def keda_target(spec: remote.MetricSpec) -> int:
    """The HPA target KEDA derives from a spec, in milli-units (K8)."""
    if spec.target_size_float > 0:
        return int(spec.target_size_float * 1000)
    return spec.target_size * 1000


def keda_value(values: Sequence[remote.MetricValue]) -> int:
    """The value the HPA sees for one ``GetMetrics`` answer, in milli-units (K8)."""
    total = 0
    for item in values:
        raw = item.value_float if item.value_float > 0 else float(item.value)
        total += max(0, int(raw * 1000))
    return total


# -- the driver ----------------------------------------------------------------------------------


class Clock(Protocol):
    """Simulated time for :func:`drive`."""

    def start(self) -> None: ...

    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...


class CompressedClock:
    """The real clock, ``speed`` simulated seconds per real second, from :meth:`start`."""

    def __init__(self, speed: float = DEFAULT_SPEED) -> None:
        if not speed > 0:
            raise ValueError("speed must be greater than 0")
        self.speed = speed
        self._origin: float | None = None

    def start(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        if self._origin is None:
            return 0.0
        return (time.monotonic() - self._origin) * self.speed

    async def sleep_until(self, when: float) -> None:
        delay = (when - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class MetricSource(Protocol):
    """Where :func:`drive` gets its readings."""

    async def read(self, triggers: Sequence[int], *, hpa: bool) -> dict[int, TriggerSample]: ...

    def stream(self, trigger: int) -> AsyncGenerator[bool, None]: ...


class RemoteSource:
    """Readings from a live scaler, with the calls and retries KEDA makes (K1, K7, K8)."""

    def __init__(self, client: remote.ScalerClient, refs: Mapping[int, remote.ObjectRef]) -> None:
        self._client = client
        self._refs = dict(refs)
        #: reads that failed, for the exit status
        self.failures = 0

    async def hpa_metrics(self, spec: ObjectSpec) -> list[HpaMetric]:
        """The HPA's metrics, from one ``GetMetricSpec`` per trigger (K6).

        :raises RemoteError: a trigger has no spec: KEDA could not build the HPA
        """
        metrics: list[HpaMetric] = []
        for trigger in spec.triggers:
            try:
                specs = await self._specs(self._refs[trigger.index])
            except RemoteError as err:
                where = f"trigger {trigger.index}: {err.details}"
                raise RemoteError(err.code_name, where) from None
            for item in specs:
                metrics.append(
                    HpaMetric(trigger.index, item.name, keda_target(item), trigger.metric_type)
                )
        return metrics

    async def read(self, triggers: Sequence[int], *, hpa: bool) -> dict[int, TriggerSample]:
        samples = await asyncio.gather(*(self._read(index, hpa) for index in triggers))
        self.failures += sum(1 for s in samples if s.error is not None)
        return {s.index: s for s in samples}

    def stream(self, trigger: int) -> AsyncGenerator[bool, None]:
        return self._client.stream_is_active(self._refs[trigger])

    async def _read(self, index: int, hpa: bool) -> TriggerSample:
        ref = self._refs[index]
        if hpa:
            # K7: the metrics adapter asks every trigger for its specs before reading one
            others = [r for i, r in self._refs.items() if i != index]
            await asyncio.gather(*(self._specs_quietly(r) for r in others))
        try:
            specs = await self._specs(ref)
        except RemoteError as err:
            return TriggerSample(index, error=str(err), spec_failed=True)
        values: dict[str, int] = {}
        active = False
        # with several specs the last one's activity wins, as in KEDA's getScalerState
        for item in specs:
            try:
                value, active = await self._metric_and_activity(ref, item.name)
            except RemoteError as err:
                return TriggerSample(index, values, error=str(err))
            if value is not None:
                values[item.name] = value
        return TriggerSample(index, values, active=active)

    async def _specs(self, ref: remote.ObjectRef) -> tuple[remote.MetricSpec, ...]:
        # a failed or empty GetMetricSpec is retried once after KEDA rebuilds the scaler
        for attempt in (1, 2):
            try:
                specs = await self._client.metric_spec(ref)
            except RemoteError:
                if attempt == 2:
                    raise
                continue
            if specs:
                return specs
        raise RemoteError("EMPTY", "got empty metric spec")

    async def _specs_quietly(self, ref: remote.ObjectRef) -> None:
        with contextlib.suppress(RemoteError):
            await self._client.metric_spec(ref)

    async def _metric_and_activity(
        self, ref: remote.ObjectRef, name: str
    ) -> tuple[int | None, bool]:
        # GetMetrics then IsActive; a failure of either retries the pair once (K1)
        for attempt in (1, 2):
            try:
                values = await self._client.metrics(ref, name)
                active = await self._client.is_active(ref)
            except RemoteError:
                if attempt == 2:
                    raise
                continue
            return (keda_value(values) if values else None), active
        raise AssertionError("unreachable")


async def drive(
    model: ScaleModel,
    source: MetricSource,
    clock: Clock,
    duration: float,
    emit: Callable[[Row], None],
) -> float:
    """Run ``model`` against ``source`` for ``duration`` simulated seconds, emitting each row.

    :returns: the worst lateness of a scheduled event, in simulated seconds (reads slower than
        ``--speed`` allows)
    """
    lock = asyncio.Lock()
    late = 0.0
    clock.start()
    async with asyncio.TaskGroup() as group:
        followers = [
            group.create_task(_follow(model, source, clock, lock, t.index, duration, emit))
            for t in model.spec.triggers
            if t.push
        ]
        try:
            while True:
                when, kind = model.next_event()
                if when > duration:
                    break
                await clock.sleep_until(when)
                late = max(late, clock.now() - when)
                async with lock:
                    if kind == POLL:
                        every = [t.index for t in model.spec.triggers]
                        emit(model.poll(when, await source.read(every, hpa=False)))
                    else:
                        wanted = model.hpa_reads()
                        samples = await source.read(wanted, hpa=True) if wanted else {}
                        row = model.hpa_sync(when, samples)
                        if row is not None:
                            emit(row)
        finally:
            for task in followers:
                task.cancel()
    return late


async def _follow(
    model: ScaleModel,
    source: MetricSource,
    clock: Clock,
    lock: asyncio.Lock,
    index: int,
    duration: float,
    emit: Callable[[Row], None],
) -> None:
    # K5: one StreamIsActive per push trigger, reopened with KEDA's backoff
    backoff = _STREAM_BACKOFF
    while True:
        clean = False
        with contextlib.suppress(RemoteError):
            async with contextlib.aclosing(source.stream(index)) as events:
                async for active in events:
                    if not active:
                        continue  # KEDA >= 2.18 ignores false
                    async with lock:
                        now = model.push_time(clock.now())
                        if now > duration:
                            return
                        emit(model.push(now, index))
            clean = True
        if clean:
            backoff = _STREAM_BACKOFF
        await clock.sleep_until(clock.now() + backoff)
        backoff = min(backoff * 2, _STREAM_BACKOFF_MAX)


# -- the manifest --------------------------------------------------------------------------------


def load_object(text: str, name: str | None = None) -> ObjectSpec:
    """The ScaledObject to simulate, validated by :func:`scaler.check.load_manifest` first.

    :param name: which ScaledObject, when the manifest holds several
    :raises ManifestError: listing every problem
    """
    resources = load_manifest(text)
    objects = [r for r in resources if r.ref.kind == SCALED_OBJECT]
    if not objects:
        raise ManifestError(
            [f"no {SCALED_OBJECT} to simulate ({SCALED_JOB}s are not modelled: they have no HPA)"]
        )
    if name is not None:
        objects = [r for r in objects if r.ref.name == name]
        if not objects:
            names = ", ".join(r.ref.name for r in resources if r.ref.kind == SCALED_OBJECT)
            raise ManifestError([f"no {SCALED_OBJECT} named {name!r} (found: {names})"])
    if len(objects) > 1:
        names = ", ".join(r.ref.name for r in objects)
        raise ManifestError([f"several {SCALED_OBJECT}s ({names}): choose one with --name"])
    resource = objects[0]
    where = str(resource.ref)
    raw = _raw_spec(text, resource.ref)
    problems: list[str] = []

    polling = _integer(raw, "pollingInterval", DEFAULT_POLLING_INTERVAL, where, problems, low=1)
    cooldown = _integer(raw, "cooldownPeriod", DEFAULT_COOLDOWN_PERIOD, where, problems)
    initial = _integer(raw, "initialCooldownPeriod", 0, where, problems)
    fallback = _fallback(raw.get("fallback"), where, problems)
    advanced = raw.get("advanced")
    behavior: Behavior | None = None
    if advanced is not None and not isinstance(advanced, dict):
        problems.append(f"{where}: spec.advanced is not a mapping")
    elif advanced:
        if advanced.get("scalingModifiers"):
            problems.append(f"{where}: spec.advanced.scalingModifiers is not modelled by simulate")
        hpa_config = advanced.get("horizontalPodAutoscalerConfig")
        if isinstance(hpa_config, dict) and hpa_config.get("behavior") is not None:
            behavior = _behavior(hpa_config["behavior"], where, problems)

    raw_triggers = raw.get("triggers")
    assert isinstance(raw_triggers, list)  # load_manifest checked it
    triggers: list[SimTrigger] = []
    for trigger in resource.triggers:
        at = f"{where}: spec.triggers[{trigger.index}]"
        if not trigger.external:
            problems.append(
                f"{at} has type {trigger.type!r}: only {' and '.join(EXTERNAL_TYPES)} triggers "
                "are served by this scaler and can be simulated"
            )
            continue
        entry = raw_triggers[trigger.index]
        metric_type = entry.get("metricType") or AVERAGE_VALUE
        if metric_type not in (AVERAGE_VALUE, VALUE):
            problems.append(f"{at}.metricType must be {AVERAGE_VALUE} or {VALUE}")
        cached = entry.get("useCachedMetrics", False)
        if not isinstance(cached, bool):
            problems.append(f"{at}.useCachedMetrics must be true or false")
        triggers.append(
            SimTrigger(trigger.index, trigger.type, trigger.metadata, metric_type, cached is True)
        )
    if problems:
        raise ManifestError(problems)
    return ObjectSpec(
        resource.ref,
        resource.replicas,
        tuple(triggers),
        polling_interval=polling,
        cooldown_period=cooldown,
        initial_cooldown_period=initial,
        fallback=fallback,
        behavior=behavior,
    )


def _raw_spec(text: str, ref: ScaledRef) -> dict[str, Any]:
    # load_manifest validated the shape; this finds the same document's raw spec again
    for document in yaml.safe_load_all(text):
        candidates = [document]
        if isinstance(document, dict) and document.get("kind") == "List":
            candidates = list(document.get("items") or [])
        for item in candidates:
            if not isinstance(item, dict) or item.get("kind") != ref.kind:
                continue
            meta = item.get("metadata") or {}
            if meta.get("name") == ref.name and (meta.get("namespace") or "default") == (
                ref.namespace
            ):
                spec = item.get("spec")
                assert isinstance(spec, dict)
                return spec
    raise AssertionError(f"{ref} vanished from the manifest")


def _integer(
    mapping: Mapping[str, Any],
    key: str,
    default: int,
    where: str,
    problems: list[str],
    *,
    low: int = 0,
    high: int | None = None,
) -> int:
    value = mapping.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        problems.append(f"{where}: {key} must be an integer of at least {low}")
        return default
    if high is not None and value > high:
        problems.append(f"{where}: {key} must be at most {high}")
        return default
    return value


def _fallback(raw: Any, where: str, problems: list[str]) -> Fallback | None:
    if raw is None:
        return None
    at = f"{where}: spec.fallback"
    if not isinstance(raw, dict):
        problems.append(f"{at} is not a mapping")
        return None
    before = len(problems)
    for key in ("failureThreshold", "replicas"):
        if key not in raw:
            problems.append(f"{at}.{key} is required")
    threshold = _integer(raw, "failureThreshold", 0, at, problems)
    replicas = _integer(raw, "replicas", 0, at, problems)
    behavior = raw.get("behavior") or "static"
    if behavior not in FALLBACK_BEHAVIORS:
        problems.append(f"{at}.behavior must be one of {', '.join(FALLBACK_BEHAVIORS)}")
    if len(problems) > before:
        return None
    return Fallback(threshold, replicas, str(behavior))


def _behavior(raw: Any, where: str, problems: list[str]) -> Behavior | None:
    at = f"{where}: spec.advanced.horizontalPodAutoscalerConfig.behavior"
    if not isinstance(raw, dict):
        problems.append(f"{at} is not a mapping")
        return None
    up = _rules(raw.get("scaleUp"), DEFAULT_SCALE_UP, f"{at}.scaleUp", problems)
    down = _rules(raw.get("scaleDown"), DEFAULT_SCALE_DOWN, f"{at}.scaleDown", problems)
    return Behavior(up, down)


def _rules(raw: Any, default: ScalingRules, at: str, problems: list[str]) -> ScalingRules:
    # copyHPAScalingRules: each field given replaces the default's, the others stay
    if raw is None:
        return default
    if not isinstance(raw, dict):
        problems.append(f"{at} is not a mapping")
        return default
    window = default.stabilization_window
    if raw.get("stabilizationWindowSeconds") is not None:
        window = _integer(raw, "stabilizationWindowSeconds", 0, at, problems, high=3600)
    select = raw.get("selectPolicy") or default.select_policy
    if select not in (SELECT_MAX, SELECT_MIN, SELECT_DISABLED):
        problems.append(f"{at}.selectPolicy must be Max, Min or Disabled")
        select = default.select_policy
    policies = default.policies
    if raw.get("policies") is not None:
        policies = _policies(raw["policies"], f"{at}.policies", problems) or default.policies
    tolerance = _tolerance(raw.get("tolerance"), f"{at}.tolerance", problems)
    return ScalingRules(window, str(select), policies, tolerance)


def _policies(raw: Any, at: str, problems: list[str]) -> tuple[ScalingPolicy, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{at} must be a non-empty list")
        return ()
    policies: list[ScalingPolicy] = []
    for number, item in enumerate(raw):
        here = f"{at}[{number}]"
        if not isinstance(item, dict):
            problems.append(f"{here} is not a mapping")
            continue
        kind = item.get("type")
        if kind not in (PODS, PERCENT):
            problems.append(f"{here}.type must be Pods or Percent")
            continue
        before = len(problems)
        value = _integer(item, "value", 0, here, problems, low=1)
        period = _integer(item, "periodSeconds", 0, here, problems, low=1, high=1800)
        for key in ("value", "periodSeconds"):
            if item.get(key) is None:
                problems.append(f"{here}.{key} is required")
        if len(problems) == before:
            policies.append(ScalingPolicy(str(kind), value, period))
    return tuple(policies)


def _tolerance(raw: Any, at: str, problems: list[str]) -> float | None:
    # a Kubernetes quantity: 0.05, "0.05" or "50m"
    if raw is None:
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        milli = isinstance(raw, str) and raw.endswith("m")
        value = float(raw[:-1]) / 1000 if milli else float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        problems.append(f"{at} must be a non-negative quantity such as 0.05 or 50m")
        return None
    return value


# -- output --------------------------------------------------------------------------------------


class Table:
    """The timeline as a text table, one line per row as it happens."""

    def __init__(self, out: TextIO, keys: Sequence[str]) -> None:
        self._out = out
        self._keys = list(keys)
        self._widths = [max(len(k), 8) for k in self._keys]

    def header(self, title: str) -> None:
        self._out.write(title + "\n")
        cells = ["TIME".rjust(8), "EVENT"]
        cells += [k.ljust(w) for k, w in zip(self._keys, self._widths, strict=True)]
        cells += ["ACTIVE", "REPLICAS", "REASON"]
        self._out.write("  ".join(cells) + "\n")
        self._out.flush()

    def row(self, row: Row) -> None:
        cells = [f"{row.time:8.1f}", row.event.ljust(5)]
        for key, width in zip(self._keys, self._widths, strict=True):
            cells.append(_value(row.values.get(key), key in row.values).ljust(width))
        active = "-" if row.active is None else ("yes" if row.active else "no")
        cells += [active.ljust(6), str(row.replicas).ljust(8), row.reason]
        self._out.write("  ".join(cells).rstrip() + "\n")
        self._out.flush()


def _value(value: float | None, present: bool) -> str:
    if not present:
        return "-"
    if value is None:
        return "error"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def _seconds(value: float) -> str:
    return f"{value:g}s" if value < 1e6 else f"{value:.0f}s"


def describe(spec: ObjectSpec, settings: HpaSettings, duration: float, speed: float) -> str:
    """The header line: what is simulated, with which settings."""
    bounds = spec.replicas
    parts = [f"replicas {bounds.min}..{bounds.max}"]
    if bounds.idle is not None:
        parts.append(f"idle {bounds.idle}")
    parts += [
        f"pollingInterval {spec.polling_interval}s",
        f"cooldownPeriod {spec.cooldown_period}s",
        f"HPA every {settings.sync_period:g}s "
        + ("(default scaling rules)" if spec.behavior is None else "(behavior)"),
    ]
    if spec.fallback is not None:
        parts.append(
            f"fallback {spec.fallback.replicas} after {spec.fallback.failure_threshold} failures"
        )
    return f"{spec.ref}: {', '.join(parts)}; {duration:g}s simulated at {speed:g}x"


def plot_available() -> bool:
    """Whether ``--plot`` can work (matplotlib is the optional extra ``plot``)."""
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(
    path: str,
    rows: Sequence[Row],
    metrics: Sequence[HpaMetric],
    *,
    title: str,
    duration: float,
    initial: int,
) -> None:
    """A PNG chart: metric values (and targets) on the left axis, replicas on the right, as
    steps. Uses a bare Figure (the Agg canvas), never pyplot's global state."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 5.5), layout="constrained")
    values_axis = figure.add_subplot()
    replicas_axis = values_axis.twinx()
    # values drawn over the replicas: the twin axis would otherwise hide them
    values_axis.set_zorder(replicas_axis.get_zorder() + 1)
    values_axis.patch.set_visible(False)
    highest = 0.0
    for metric in metrics:
        points = [
            (row.time, value) for row in rows if (value := row.values.get(metric.key)) is not None
        ]
        target = metric.target / 1000
        highest = max(highest, target, *(value for _, value in points))
        if points:
            xs, ys = zip(*points, strict=True)
            line = values_axis.step(xs, ys, where="post", linewidth=1.5, label=metric.key)[0]
            values_axis.axhline(
                target,
                color=line.get_color(),
                linestyle=":",
                linewidth=1,
                label=f"{metric.key} target",
            )
    times = [0.0, *(row.time for row in rows), duration]
    counts = [initial, *(row.replicas for row in rows)]
    counts.append(counts[-1])
    replicas_axis.fill_between(times, counts, step="post", color="0.85", label="replicas")
    replicas_axis.step(times, counts, where="post", color="0.3", linewidth=1)
    replicas_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    # different headroom on the two axes, so equal heights do not mean equal numbers
    replicas_axis.set_ylim(0, max(counts) * 1.4 + 1)
    values_axis.set_ylim(0, highest * 1.15 or 1)
    values_axis.set_xlim(0, duration)
    values_axis.set_xlabel("simulated time (s)")
    values_axis.set_ylabel("metric value")
    replicas_axis.set_ylabel("replicas")
    values_axis.set_title(title, fontsize=9)
    handles, labels = values_axis.get_legend_handles_labels()
    more_handles, more_labels = replicas_axis.get_legend_handles_labels()
    values_axis.legend(handles + more_handles, labels + more_labels, loc="upper right", fontsize=8)
    figure.savefig(path, format="png", dpi=100)


# -- the command ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``MANIFEST`` and the options of the ``simulate`` subcommand to ``parser``."""
    parser.add_argument(
        "file",
        metavar="MANIFEST",
        help="the ScaledObject to simulate ('-' reads stdin); xxxFromEnv keys are resolved "
        "from this process's environment",
    )
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"host:port of the running scaler's gRPC port (default {DEFAULT_ADDRESS}); "
        "the triggers' scalerAddress is not used",
    )
    parser.add_argument("--name", help="which ScaledObject, when the manifest holds several")
    parser.add_argument(
        "--speed",
        type=_positive,
        default=DEFAULT_SPEED,
        help="simulated seconds per real second: 30 runs a 30 s pollingInterval every second "
        f"(default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"simulated time to run (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--replicas",
        type=_count,
        metavar="N",
        help="the scale target's replicas at the start "
        "(default: idleReplicaCount if set, else minReplicaCount)",
    )
    parser.add_argument(
        "--hpa-sync",
        type=_positive,
        default=DEFAULT_HPA_SYNC,
        metavar="SECONDS",
        help="the HPA's sync period (kube-controller-manager "
        f"--horizontal-pod-autoscaler-sync-period, default {DEFAULT_HPA_SYNC:g})",
    )
    parser.add_argument(
        "--hpa-tolerance",
        type=_fraction,
        default=DEFAULT_HPA_TOLERANCE,
        metavar="RATIO",
        help="the HPA's tolerance (--horizontal-pod-autoscaler-tolerance, "
        f"default {DEFAULT_HPA_TOLERANCE:g})",
    )
    parser.add_argument(
        "--hpa-downscale-stabilization",
        type=_count,
        default=DEFAULT_DOWNSCALE_STABILIZATION,
        metavar="SECONDS",
        help="scale-down stabilization window when the behavior does not set one "
        "(--horizontal-pod-autoscaler-downscale-stabilization, "
        f"default {DEFAULT_DOWNSCALE_STABILIZATION})",
    )
    parser.add_argument("--json", action="store_true", help="print the timeline as a JSON list")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also write a chart of values and replicas (needs the 'plot' extra: matplotlib)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=remote.DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"deadline of each call to the scaler (default {remote.DEFAULT_TIMEOUT:g})",
    )
    # dest names of their own: `serve`'s Settings reads tls_cert/tls_key from a namespace
    tls = parser.add_argument_group("TLS to the scaler (plaintext without these)")
    tls.add_argument(
        "--tls",
        dest="client_tls",
        action="store_true",
        help="use TLS, trusting the system's CAs (unless --tls-ca)",
    )
    tls.add_argument(
        "--tls-ca",
        dest="client_tls_ca",
        metavar="FILE",
        help="PEM CA that signed the scaler's cert",
    )
    tls.add_argument(
        "--tls-cert", dest="client_tls_cert", metavar="FILE", help="PEM client cert, for mTLS"
    )
    tls.add_argument("--tls-key", dest="client_tls_key", metavar="FILE", help="its PEM key")
    tls.add_argument(
        "--tls-server-name",
        dest="client_tls_server_name",
        metavar="NAME",
        help="name to verify in the scaler's certificate (default: the host of --address)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


async def run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
    *,
    clock: Clock | None = None,
) -> int:
    """Simulate ``args.file``'s ScaledObject against the scaler at ``args.address``.

    :param args: parsed with :func:`add_arguments`
    :param environ: where ``xxxFromEnv`` names are resolved (the CLI passes its own environment)
    :param out: the table (row by row, as events happen) or, with ``--json``, the JSON list;
        problems and notes go to ``sys.stderr``
    :param clock: replaces the real clock compressed by ``--speed`` (tests)
    :returns: 0 when every read succeeded, 1 when the scaler could not be reached, refused a
        trigger or failed a read during the run (the timeline is still printed), 2 when the
        manifest, the options or the plot are unusable
    """
    if args.plot and not plot_available():
        _stderr(
            "simulate: --plot needs matplotlib, which is not installed: "
            "pip install 'keda-queue-scaler[plot]'"
        )
        return EXIT_BAD_INPUT
    tls = _tls(args)
    if isinstance(tls, str):
        _stderr(f"simulate: {tls}")
        return EXIT_BAD_INPUT
    try:
        text = await asyncio.to_thread(_read, args.file)
        spec = load_object(text, args.name)
    except (OSError, UnicodeDecodeError) as err:
        problem = "not UTF-8 text" if isinstance(err, UnicodeDecodeError) else err.strerror
        _stderr(f"simulate: cannot read {args.file}: {problem or type(err).__name__}")
        return EXIT_BAD_INPUT
    except ManifestError as err:
        for problem in err.problems:
            _stderr(f"simulate: {args.file}: {problem}")
        return EXIT_BAD_INPUT

    refs: dict[int, remote.ObjectRef] = {}
    for trigger in spec.triggers:
        metadata, dropped = resolve_from_env(trigger.metadata, environ)
        for key in dropped:
            _stderr(
                f"simulate: note: trigger {trigger.index}: {key}: variable "
                f"{trigger.metadata[key]!r} is unset or empty here; the key is dropped, "
                "as KEDA does"
            )
        refs[trigger.index] = remote.ObjectRef(spec.ref.name, spec.ref.namespace, metadata)

    settings = HpaSettings(args.hpa_sync, args.hpa_tolerance, args.hpa_downscale_stabilization)
    clock = clock or CompressedClock(args.speed)
    rows: list[Row] = []
    async with contextlib.AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(
                remote.ScalerClient(args.address, tls=tls, timeout=args.timeout)
            )
        except OSError as err:
            _stderr(f"simulate: cannot read {err.filename}: {err.strerror}")
            return EXIT_BAD_INPUT
        source = RemoteSource(client, refs)
        try:
            metrics = await source.hpa_metrics(spec)
        except RemoteError as err:
            _stderr(f"simulate: {args.address}: KEDA could not build the HPA: {err}")
            return EXIT_READ_FAILED
        bad = [m.key for m in metrics if m.target <= 0]
        if bad:
            _stderr(f"simulate: a target of 0 cannot be simulated ({', '.join(bad)})")
            return EXIT_BAD_INPUT
        model = ScaleModel(spec, metrics, settings=settings, replicas=args.replicas)
        initial = model.replicas
        table = None if args.json else Table(out, [m.key for m in metrics])
        if table is not None:
            table.header(describe(spec, settings, args.duration, args.speed))

        def emit(row: Row) -> None:
            rows.append(row)
            if table is not None:
                table.row(row)

        late = await drive(model, source, clock, args.duration, emit)

    if args.json:
        out.write(json.dumps([r.as_json() for r in rows], indent=2) + "\n")
    if late > min(spec.polling_interval, settings.sync_period) / 2:
        _stderr(
            f"simulate: note: the scaler answered slower than --speed {args.speed:g} allows: "
            f"events ran up to {late:.1f} simulated seconds late"
        )
    if args.plot:
        try:
            await asyncio.to_thread(
                write_plot,
                args.plot,
                rows,
                metrics,
                title=describe(spec, settings, args.duration, args.speed),
                duration=args.duration,
                initial=initial,
            )
        except OSError as err:
            _stderr(f"simulate: cannot write {args.plot}: {err.strerror}")
            return EXIT_BAD_INPUT
    return EXIT_READ_FAILED if source.failures else EXIT_OK


def _tls(args: argparse.Namespace) -> remote.TlsConfig | str | None:
    ca, cert, key = args.client_tls_ca, args.client_tls_cert, args.client_tls_key
    server_name = args.client_tls_server_name
    if not (args.client_tls or ca or cert or key or server_name):
        return None
    if (cert is None) != (key is None):
        return "--tls-cert and --tls-key go together"
    return remote.TlsConfig(ca, cert, key, server_name)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
