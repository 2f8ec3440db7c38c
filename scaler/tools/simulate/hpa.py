"""The HPA's scaling rules: behavior, stabilization windows and rate limits (rules H5-H7).

This module owns what the HPA controller does with a desired replica count once its metrics
gave one (Kubernetes' ``horizontal.go``, ``normalizeDesiredReplicas`` and
``normalizeDesiredReplicasWithBehaviors``): the ``behavior`` types with Kubernetes' defaults,
the controller flags :class:`HpaSettings`, and :class:`ReplicaNormalizer`, which remembers the
recommendations and scale events those rules look back on. Deterministic, no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

PODS: Final = "Pods"
PERCENT: Final = "Percent"
SELECT_MAX: Final = "Max"
SELECT_MIN: Final = "Min"
SELECT_DISABLED: Final = "Disabled"

DEFAULT_HPA_SYNC: Final = 15.0
DEFAULT_HPA_TOLERANCE: Final = 0.1
DEFAULT_DOWNSCALE_STABILIZATION: Final = 300


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
class HpaSettings:
    """The kube-controller-manager flags the HPA depends on."""

    sync_period: float = DEFAULT_HPA_SYNC
    tolerance: float = DEFAULT_HPA_TOLERANCE
    downscale_stabilization: int = DEFAULT_DOWNSCALE_STABILIZATION


@dataclass(frozen=True, slots=True)
class Decision:
    """What the rules made of a desired count.

    :param replicas: the new replica count
    :param limit: the rule that bounded it (a policy, the legacy limit, a bound), else ``""``
    :param stabilized: the recommendation after the stabilization window
    :param window: which window stabilized it, for the row's reason
    """

    replicas: int
    limit: str
    stabilized: int
    window: str


class ReplicaNormalizer:
    """The HPA's memory between syncs and the rules that use it (H5-H7).

    :param behavior: ``None`` when KEDA left the HPA's behavior unset: the legacy rules (H5)
    """

    def __init__(
        self, behavior: Behavior | None, settings: HpaSettings, minimum: int, maximum: int
    ) -> None:
        self.behavior = behavior
        self.settings = settings
        self.minimum = minimum
        self.maximum = maximum
        self._recommendations: list[tuple[float, int]] | None = None
        self._up_events: list[tuple[float, int]] = []
        self._down_events: list[tuple[float, int]] = []

    def record_initial(self, now: float, current: int) -> None:
        """The first sync records the current count as a recommendation (H1)."""
        if self._recommendations is None:
            self._recommendations = [(now, current)]

    def tolerances(self) -> tuple[float, float]:
        """``(scale-down, scale-up)`` tolerances (H3)."""
        default = self.settings.tolerance
        if self.behavior is None:
            return default, default
        down = self.behavior.scale_down.tolerance
        up = self.behavior.scale_up.tolerance
        return (default if down is None else down), (default if up is None else up)

    def normalize(self, now: float, current: int, desired: int) -> Decision:
        """The replica count the HPA sets for ``desired`` at ``now`` (H5 or H6)."""
        if self.behavior is None:
            return self._legacy(now, current, desired)
        return self._with_behavior(self.behavior, now, current, desired)

    def record_scale(self, now: float, before: int, after: int) -> None:
        """A change the HPA made, for the policies' periods (H7)."""
        # storeScaleEvent keeps nothing without a behavior (the legacy rules need none)
        if self.behavior is None or before == after:
            return
        if after > before:
            events, rules, change = self._up_events, self.behavior.scale_up, after - before
        else:
            events, rules, change = self._down_events, self.behavior.scale_down, before - after
        longest = max((p.period for p in rules.policies), default=0)
        events[:] = [(t, c) for t, c in events if t > now - longest]
        events.append((now, change))

    def _legacy(self, now: float, current: int, desired: int) -> Decision:
        # H5: horizontal.go stabilizeRecommendation + convertDesiredReplicasWithRules
        window = self.settings.downscale_stabilization
        cutoff = now - window
        recent = [(t, r) for t, r in self._recommendations or [] if not t < cutoff]
        stabilized = max([desired, *(r for _, r in recent)])
        self._recommendations = [*recent, (now, desired)]
        scale_up_limit = int(max(2.0 * current, 4.0))
        if self.maximum > scale_up_limit:
            maximum, why = scale_up_limit, "scale-up limit max(2x, 4)"
        else:
            maximum, why = self.maximum, f"maxReplicas {self.maximum}"
        label = f"downscale stabilization {window}s"
        if stabilized < self.minimum:
            return Decision(self.minimum, f"minReplicas {self.minimum}", stabilized, label)
        if stabilized > maximum:
            return Decision(maximum, why, stabilized, label)
        return Decision(stabilized, "", stabilized, label)

    def _with_behavior(
        self, behavior: Behavior, now: float, current: int, desired: int
    ) -> Decision:
        # H6: horizontal.go stabilizeRecommendationWithBehaviors, then
        # convertDesiredReplicasWithBehaviorRate
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

        if stabilized > current:
            limit, policy = self._rate_limit(now, current, up, scale_up=True)
            limit = max(limit, current)
            if self.maximum > limit:
                maximum, why = limit, policy
            else:
                maximum, why = self.maximum, f"maxReplicas {self.maximum}"
            if stabilized > maximum:
                return Decision(maximum, why, stabilized, label)
        elif stabilized < current:
            limit, policy = self._rate_limit(now, current, down, scale_up=False)
            limit = min(limit, current)
            if self.minimum < limit:
                minimum, why = limit, policy
            else:
                minimum, why = self.minimum, f"minReplicas {self.minimum}"
            if stabilized < minimum:
                return Decision(minimum, why, stabilized, label)
        return Decision(stabilized, "", stabilized, label)

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


def _changes(events: Sequence[tuple[float, int]], now: float, period: int) -> int:
    return sum(change for stamp, change in events if stamp > now - period)
