"""Summary figures of a load run: nearest-rank percentiles, latency summaries, ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q <= 100) by nearest rank; NaN for no values.

    Nearest rank is an observed value: p99 of 200 samples is the 198th smallest.
    """
    if not values:
        return math.nan
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p99, max and mean in milliseconds (rounded to the microsecond)."""
    if not seconds:
        return {"count": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": _ms(percentile(ordered, 50)),
        "p99_ms": _ms(percentile(ordered, 99)),
        "max_ms": _ms(ordered[-1]),
        "mean_ms": _ms(sum(ordered) / len(ordered)),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator rounded to 0.01; NaN when undefined; inf for x/0 with x > 0."""
    if math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    if denominator == 0:
        return math.inf if numerator > 0 else math.nan
    return round(numerator / denominator, 2)
