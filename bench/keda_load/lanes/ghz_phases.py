"""KEDA's calls as ghz runs: a poll round as sequential phases, the sustained pattern side by side.

KEDA's poll loop sends GetMetricSpec, then GetMetrics, then IsActive for each ScaledObject; the
HPA sends the same through KEDA's metrics adapter with lower-cased metric names and a 3 s
deadline. The poll and HPA paths run concurrently in a cluster, so the sustained load is six
ghz processes at once.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness.ghz import GhzLoad
from bench.harness.keda_pattern import ROUND

#: the HPA's deadline on the metrics path, in seconds
HPA_DEADLINE = 3.0


def round_phases(
    refs: Path, metrics: Path, objects: int, concurrency: int, deadline: float | None
) -> list[GhzLoad]:
    """One round over ``objects`` ScaledObjects, one ghz run per method, to run in order.

    :param refs: ghz data of the ScaledObjectRefs; ``metrics``: of their GetMetricsRequests
    """
    data = {"GetMetricSpec": refs, "GetMetrics": metrics, "IsActive": refs}
    return [
        GhzLoad(method, data[method], concurrency, total=objects, deadline=deadline)
        for method in ROUND
    ]


def sustained_pattern(
    refs: Path, polled: Path, hpa: Path, concurrency: int, seconds: float, rate: int
) -> list[GhzLoad]:
    """KEDA's poll loop and the HPA's path at ``rate`` rounds per second each, for ``seconds``:
    six ghz runs to start together."""
    paths = ((polled, None), (hpa, HPA_DEADLINE))
    return [
        GhzLoad(
            method,
            metrics if method == "GetMetrics" else refs,
            concurrency,
            duration=seconds,
            rps=rate,
            deadline=deadline,
        )
        for metrics, deadline in paths
        for method in ROUND
    ]
