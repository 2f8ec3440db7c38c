"""Replica arithmetic of KEDA and the HPA, with one milli-unit rule for every tool.

This module owns the numbers ``check`` prints and ``simulate`` steps through: how KEDA turns a
scaler's values and targets into Kubernetes quantities, the HPA's per-metric replica count, a
ScaledObject's replica count and a ScaledJob's job count. It does no I/O and knows no wire type.

The milli-unit rule (KEDA v2.20+, ``quantityFromFloat64`` in ``pkg/scalers/scaler.go``)
    A float becomes a quantity through ``resource.MustParse(fmt.Sprintf("%.3f", v))``: rounded
    to 3 decimals, not truncated (Go's ``%.3f`` rounds the exact binary value correctly, as
    Python's ``f"{v:.3f}"`` does, so 0.0005 is 1 milli-unit and 1.0005 is 1000). NaN and
    infinities become 0, and since v2.20.2 so do negative values. KEDA reads the float field
    only when it is > 0, else the int field: ``metricValueFloat``/``metricValue`` for a value,
    ``targetSizeFloat``/``targetSize`` for a target (an int target is taken exactly, unclamped).

Per metric, the HPA (``AverageValue``, Kubernetes' ``replica_calculator.go``)
    ``ceil(value / target)`` on the milli-unit quantities, as float division the way the HPA's
    Go code does it: 0.33 over 0.03 is 330/30 = 11, not the 12 of floating point.

A ScaledObject (``minReplicaCount`` default 0, ``maxReplicaCount`` default 100,
``idleReplicaCount`` unset by default; ``metricType: AverageValue``), without the HPA's tolerance,
stabilisation and rate limits, which need the current replica count::

    inactive and (min == 0 or idleReplicaCount set)  ->  idleReplicaCount, else 0
    otherwise  ->  clamp(max over metrics of ceil(value / target), low, max)
                   with low = max(min, 1) when active, min when inactive

A ScaledJob (``minReplicaCount`` default 0, ``maxReplicaCount`` default 100)::

    jobs = max(min, min(ceil(value / target), max))  when active
    jobs = min                                        when inactive

    With several triggers KEDA's ``scalingStrategy.multipleScalersCalculation`` combines the
    active ones: ``max`` (default: the trigger with the longest queue), ``min`` (the shortest),
    ``avg`` or ``sum`` of ``min(value / target, max)``, then rounded up and capped at ``max``.
    It is the number of jobs KEDA aims to have running, before subtracting the running ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

from scaler.tools.manifest import Replicas

AVERAGE_VALUE: Final = "AverageValue"
VALUE: Final = "Value"


class WireValue(Protocol):
    """A ``MetricValue`` as a scaler sent it (:class:`scaler.tools.remote.MetricValue`)."""

    @property
    def value(self) -> int: ...

    @property
    def value_float(self) -> float: ...


class WireTarget(Protocol):
    """A ``MetricSpec`` as a scaler sent it (:class:`scaler.tools.remote.MetricSpec`)."""

    @property
    def target_size(self) -> int: ...

    @property
    def target_size_float(self) -> float: ...


def milli_units(quantity: float) -> int:
    """``quantity`` as the milli-units of the Kubernetes quantity KEDA makes of it."""
    if not math.isfinite(quantity) or quantity <= 0:
        return 0
    # the %.3f text is exact in milli-units: dropping its point reads them off without a float
    return int(f"{quantity:.3f}".replace(".", ""))


def keda_value(values: Iterable[WireValue]) -> int:
    """The value the HPA sees for one ``GetMetrics`` answer, in milli-units: each entry's float
    field when > 0, else its int field, and the entries summed (the HPA adds them up)."""
    return sum(
        milli_units(item.value_float if item.value_float > 0 else float(item.value))
        for item in values
    )


def keda_target(spec: WireTarget) -> int:
    """The HPA target KEDA derives from one ``GetMetricSpec`` entry, in milli-units."""
    if spec.target_size_float > 0:
        return milli_units(spec.target_size_float)
    return spec.target_size * 1000


def hpa_replicas(value: int, target: int) -> int:
    """The HPA's ``ceil(value / target)`` for an ``AverageValue`` metric, in milli-units."""
    return math.ceil(value / target)


def hpa_proposal(
    metric_type: str, value: int, target: int, current: int, tolerances: tuple[float, float]
) -> tuple[int, float, bool]:
    """One metric's replica count, usage ratio and whether the tolerance kept the count.

    :param tolerances: ``(scale-down, scale-up)``; within tolerance means
        ``1 - down <= ratio <= 1 + up``
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
    return hpa_replicas(value, target), ratio, False


def scaled_object_replicas(
    points: Sequence[tuple[int, int]], active: bool, bounds: Replicas
) -> int:
    """A ScaledObject's replica count for ``(value, target)`` metrics in milli-units."""
    if not active and (bounds.min == 0 or bounds.idle is not None):
        return bounds.idle if bounds.idle is not None else 0
    # a target below 0.0005 is 0 milli-units: counted as 1 rather than divided by
    wanted = max((hpa_replicas(value, max(target, 1)) for value, target in points), default=0)
    low = max(bounds.min, 1) if active else bounds.min
    return min(max(wanted, low), bounds.max)


def scaled_job_replicas(points: Sequence[tuple[int, int, bool]], bounds: Replicas) -> int:
    """A ScaledJob's job count for ``(value, target, active)`` triggers in milli-units."""
    # KEDA's CalculateQueueLengthAndMaxValue: a target of 0 leaves the trigger's scale at 0
    metrics = [
        (value, min(value / target, bounds.max) if target else 0.0)
        for value, target, on in points
        if on
    ]
    queue, scale, active = 0, 0.0, False
    if bounds.calculation == "min":
        for length, wanted in metrics:
            if queue == 0 or length < queue:
                queue, scale, active = length, wanted, True
    elif bounds.calculation in ("avg", "sum"):
        if metrics:
            active = True
            scale = sum(wanted for _, wanted in metrics)
            if bounds.calculation == "avg":
                scale /= len(metrics)
    else:  # max: the trigger with the longest queue
        for length, wanted in metrics:
            if length > queue:
                queue, scale, active = length, wanted, True
    jobs = math.ceil(min(scale, bounds.max)) if active else 0
    return max(jobs, bounds.min)
