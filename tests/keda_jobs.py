"""KEDA v2.20's ScaledJob arithmetic, written out again for the tests from KEDA's Go source and
the scaling-jobs page, without calling ``simulate``'s model: the jobs a poll creates from each
trigger's queue length and target, the running and pending jobs, and the strategy.

One spec per trigger (this scaler always returns one). Sources: ``CalculateQueueLengthAndMaxValue``
and ``IsScaledJobActive`` (``pkg/scaling/scaledjob/metrics.go``), ``getScalingDecision``,
``createJobs`` and the ``GetEffectiveMaxScale`` of each strategy
(``pkg/scaling/executor/scale_jobs.go``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str = "default"
    deduction: int = 0
    percentage: float = 0.0


def jobs_to_create(
    triggers: list[tuple[float, float, bool]],
    running: int,
    pending: int,
    *,
    low: int = 0,
    high: int = 100,
    calculation: str = "max",
    strategy: Strategy | None = None,
) -> int:
    """``triggers``: ``(queue length, target, active)`` per trigger, in manifest order."""
    strategy = strategy or Strategy()
    # per trigger: maxValue = min(queue / target, maxReplicaCount)
    scalers = [
        (queue, min(queue / target, high) if target else 0.0, on) for queue, target, on in triggers
    ]
    active_ones = [s for s in scalers if s[2]]
    if calculation == "max":
        # the first active trigger with the longest (non-zero) queue
        candidates = [s for s in active_ones if s[0] > 0]
        chosen = max(candidates, key=lambda s: s[0]) if candidates else None
        queue, value = (chosen[0], chosen[1]) if chosen else (0.0, 0.0)
        active = chosen is not None
    elif calculation == "min":
        # for queues > 0: the shortest one
        assert all(s[0] > 0 for s in active_ones), "the tests keep min to non-zero queues"
        chosen = min(active_ones, key=lambda s: s[0]) if active_ones else None
        queue, value = (chosen[0], chosen[1]) if chosen else (0.0, 0.0)
        active = chosen is not None
    else:
        count = len(active_ones)
        queue = sum(s[0] for s in active_ones)
        value = sum(s[1] for s in active_ones)
        if calculation == "avg" and count:
            queue, value = queue / count, value / count
        active = count > 0
    if low > 0:
        active = True
    scale_to = math.ceil(queue)
    max_scale = math.ceil(min(value, high))
    if not active:
        return 0

    if running < low:
        effective = scale_to = low - running
    else:
        r = running - low
        if strategy.name == "custom":
            effective = min(
                max_scale - strategy.deduction - math.trunc(r * strategy.percentage), high
            )
        elif strategy.name == "accurate":
            effective = high - r if max_scale + r > high else max_scale - pending
        elif strategy.name == "eager":
            effective = min(high - r - pending, max_scale)
            scale_to = high
        else:
            effective = max_scale - r
    effective = max(effective, 0)
    return min(scale_to, effective) if effective > 0 else 0


class Jobs:
    """The jobs created so far, each pending ``pending`` s then running ``duration`` s."""

    def __init__(self, duration: float, pending: float = 0.0) -> None:
        self.duration = duration
        self.pending = pending
        self.created: list[float] = []

    def counts(self, now: float) -> tuple[int, int]:
        """(running, pending) at ``now``: a job whose end is ``now`` has finished."""
        unfinished = [t for t in self.created if t + self.pending + self.duration > now]
        return len(unfinished), sum(1 for t in unfinished if t + self.pending > now)

    def create(self, now: float, count: int) -> None:
        self.created += [now] * count
