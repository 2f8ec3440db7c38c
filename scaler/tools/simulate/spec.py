"""What ``simulate`` needs of a ScaledObject, and how it is taken from the manifest model.

This module owns :class:`ObjectSpec` (bounds, timing, fallback, HPA behavior and the external
triggers of one ScaledObject), the HPA's metrics as KEDA builds them (:class:`HpaMetric`), and
:func:`load_object`, which validates the fields ``simulate`` reads beyond the shared manifest
model of :mod:`scaler.tools.manifest`, from the raw ``spec`` that model kept (the YAML is
parsed once, there). It refuses what the model cannot simulate, listing every problem at once.
It also owns :func:`choose`, which picks the one ScaledObject or ScaledJob of a manifest to
simulate (a ScaledJob's spec is :mod:`.job_spec`'s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from scaler.errors import ManifestError
from scaler.tools.manifest import (
    EXTERNAL_TYPES,
    SCALED_JOB,
    SCALED_OBJECT,
    Replicas,
    ScaledRef,
    ScaledResource,
)
from scaler.tools.replicas import AVERAGE_VALUE, VALUE
from scaler.tools.simulate.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    PERCENT,
    PODS,
    SELECT_DISABLED,
    SELECT_MAX,
    SELECT_MIN,
    Behavior,
    ScalingPolicy,
    ScalingRules,
)

FALLBACK_BEHAVIORS: Final = (
    "static",
    "currentReplicas",
    "currentReplicasIfHigher",
    "currentReplicasIfLower",
)
#: what ``simulate`` models: a ScaledObject (with its HPA) or a ScaledJob (:mod:`.jobs`)
KINDS: Final = (SCALED_OBJECT, SCALED_JOB)
DEFAULT_POLLING_INTERVAL: Final = 30
DEFAULT_COOLDOWN_PERIOD: Final = 300


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


def load_object(resources: Sequence[ScaledResource], name: str | None = None) -> ObjectSpec:
    """The ScaledObject to simulate, from a manifest read by
    :func:`scaler.tools.manifest.load_manifest`.

    :param name: which ScaledObject, when the manifest holds several
    :raises ManifestError: listing every problem
    """
    resource = choose(resources, name, (SCALED_OBJECT,))
    where = str(resource.ref)
    raw = resource.spec
    problems: list[str] = []

    polling = int_field(raw, "pollingInterval", DEFAULT_POLLING_INTERVAL, where, problems, low=1)
    cooldown = int_field(raw, "cooldownPeriod", DEFAULT_COOLDOWN_PERIOD, where, problems)
    initial = int_field(raw, "initialCooldownPeriod", 0, where, problems)
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

    raw_triggers = raw["triggers"]  # load_manifest checked it is a list
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


def choose(
    resources: Sequence[ScaledResource], name: str | None = None, kinds: Sequence[str] = KINDS
) -> ScaledResource:
    """The one ScaledObject or ScaledJob (of ``kinds``) to simulate.

    :param name: which one, when the manifest holds several
    :raises ManifestError: none, or several, match
    """
    objects = [r for r in resources if r.ref.kind in kinds]
    what = " or ".join(kinds)
    if not objects:
        raise ManifestError([f"no {what} to simulate"])
    if name is not None:
        named = [r for r in objects if r.ref.name == name]
        if not named:
            names = ", ".join(r.ref.name for r in objects)
            raise ManifestError([f"no {what} named {name!r} (found: {names})"])
        objects = named
    if len(objects) > 1:
        found = {r.ref.kind for r in objects}
        if len(found) == 1:
            names = ", ".join(r.ref.name for r in objects)
            raise ManifestError([f"several {found.pop()}s ({names}): choose one with --name"])
        names = ", ".join(f"{r.ref.kind}/{r.ref.name}" for r in objects)
        raise ManifestError([f"several objects ({names}): choose one with --name"])
    return objects[0]


def int_field(
    mapping: Mapping[str, Any],
    key: str,
    default: int,
    where: str,
    problems: list[str],
    *,
    low: int = 0,
    high: int | None = None,
) -> int:
    """``mapping[key]``, an integer in ``low..high``; ``default`` when absent or wrong (then the
    problem is added to ``problems``)."""
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
    threshold = int_field(raw, "failureThreshold", 0, at, problems)
    replicas = int_field(raw, "replicas", 0, at, problems)
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
        window = int_field(raw, "stabilizationWindowSeconds", 0, at, problems, high=3600)
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
        value = int_field(item, "value", 0, here, problems, low=1)
        period = int_field(item, "periodSeconds", 0, here, problems, low=1, high=1800)
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
