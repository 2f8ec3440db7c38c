"""KEDA's scale loop and executor for one ScaledObject, and the HPA it builds (K1-K9, H1-H4).

This module owns :class:`ScaleModel`, the deterministic state machine ``simulate`` steps
through: when the next poll or HPA sync is due, what KEDA's executor does with a poll's or a
push's readings, and what the HPA reads, including KEDA's fallback; the HPA's stabilization and
rate limits are :mod:`.hpa`'s, each metric's replica count :mod:`scaler.tools.replicas`'. It does
no I/O and reads no clock: every method takes the simulated time and the readings and returns a
timeline :class:`Row`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from scaler.tools.replicas import AVERAGE_VALUE, hpa_proposal
from scaler.tools.simulate.hpa import HpaSettings, ReplicaNormalizer
from scaler.tools.simulate.spec import HpaMetric, ObjectSpec

POLL: Final = "poll"
HPA: Final = "hpa"
PUSH: Final = "push"


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
        self._rules = ReplicaNormalizer(spec.behavior, self.settings, spec.hpa_min, spec.hpa_max)

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
        self._rules.record_initial(now, current)
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
                metric.metric_type, value, metric.target, current, self._rules.tolerances()
            )
            proposals.append(count)
            if within and ratio != 1.0:
                tolerated.append(f"{metric.key} ratio {ratio:.2f}")
        desired = max(proposals, default=0)
        if len(failed) == len(self.metrics) or (failed and desired < current):
            notes.insert(0, f"hpa cannot read {', '.join(failed)}: replicas kept")
            return Row(now, HPA, values, None, current, current, "; ".join(notes))

        decision = self._rules.normalize(now, current, desired)
        new, limit, stabilized = decision.replicas, decision.limit, decision.stabilized
        if new != current:
            extras = [limit] if limit else []
            if stabilized != desired:
                extras.append(f"stabilized, wanted {desired}")
            reason = f"hpa {current}->{new}" + (f" ({'; '.join(extras)})" if extras else "")
            self._rules.record_scale(now, current, new)
            self.replicas = new
        elif limit and stabilized != current:
            reason = f"held at {current} by {limit} (wanted {desired})"
        elif stabilized != desired:
            reason = f"stabilized at {current} (wanted {desired}; {decision.window})"
        elif tolerated:
            reason = f"within tolerance ({', '.join(tolerated)})"
        else:
            reason = f"steady at {current}"
        return Row(now, HPA, values, None, current, self.replicas, "; ".join([reason, *notes]))

    def _rescale(
        self, now: float, current: int, new: int, values: Mapping[str, float | None], why: str
    ) -> Row:
        self._rules.record_scale(now, current, new)
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


def _seconds(value: float) -> str:
    return f"{value:g}s" if value < 1e6 else f"{value:.0f}s"
