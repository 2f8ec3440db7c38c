"""What ``check`` found, and how it is shown: per-trigger and per-object results, and the table.

The JSON form of a trigger's result is :meth:`TriggerResult.as_json`; the object-level outcome
(a ScaledObject's HPA takes the maximum over its metrics, a ScaledJob follows
``multipleScalersCalculation``) is :func:`object_result`, on the milli-unit quantities of
:mod:`scaler.tools.replicas`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from scaler.tools.manifest import SCALED_JOB, ScaledRef, ScaledResource
from scaler.tools.replicas import milli_units, scaled_job_replicas, scaled_object_replicas


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """What ``check`` found for one trigger; ``None`` fields are unknown (failed or skipped)."""

    ref: ScaledRef
    index: int
    type: str
    backend: str | None = None
    metric_name: str | None = None
    value: float | None = None
    target: float | None = None
    active: bool | None = None
    desired_replicas: int | None = None
    error: str | None = None
    skipped: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    metric_type: str = "AverageValue"
    #: what the scaler read besides the value (per-partition ages, ready and unacked counts)
    facts: Mapping[str, float | str] = field(default_factory=dict)
    items: tuple[Mapping[str, float | str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "object": str(self.ref),
            "trigger": self.index,
            "backend": self.backend,
            "metricName": self.metric_name,
            "metricType": self.metric_type,
            "value": self.value,
            "target": self.target,
            "active": self.active,
            "desiredReplicas": self.desired_replicas,
            "error": self.error,
            "facts": dict(self.facts),
            "items": [dict(item) for item in self.items],
            "notes": list(self.notes),
        }


def milli_point(result: TriggerResult) -> tuple[int, int]:
    # The scaler sends each number as a float field and its ceiling as the int field; KEDA reads
    # the float when > 0, and an int field <= 0 becomes 0 like the float would, so KEDA's
    # quantity is the float's (the same rule simulate applies to what it receives).
    assert result.value is not None
    assert result.target is not None
    return milli_units(result.value), milli_units(result.target)


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """The object-level outcome over its external triggers."""

    active: bool | None
    desired_replicas: int | None
    explanation: str


def object_result(resource: ScaledResource, results: Sequence[TriggerResult]) -> ObjectResult:
    external = [r for r in results if not r.skipped]
    answered = [r for r in external if r.error is None]
    failed = [r.index for r in external if r.error is not None]
    skipped = len(results) - len(external)
    ignoring = f"; {skipped} skipped trigger(s) not included" if skipped else ""
    active = any(bool(r.active) for r in answered)
    if resource.ref.kind == SCALED_JOB:
        jobs = [(*milli_point(r), bool(r.active)) for r in answered]
        explanation = f"multipleScalersCalculation {resource.replicas.calculation}"
        if failed:
            explanation += f"; failed trigger(s) {_indexes(failed)} left out, as KEDA does"
        return ObjectResult(
            active or resource.replicas.min > 0,
            scaled_job_replicas(jobs, resource.replicas),
            explanation + ignoring,
        )
    if failed:
        return ObjectResult(
            active if active else None,
            None,
            f"not computed: trigger(s) {_indexes(failed)} failed, and the HPA's answer then "
            f"depends on the current replica count and spec.fallback{ignoring}",
        )
    metrics = [milli_point(r) for r in answered]
    return ObjectResult(
        active,
        scaled_object_replicas(metrics, active, resource.replicas),
        f"HPA takes the max over triggers; active if any trigger is active{ignoring}",
    )


def _indexes(indexes: Sequence[int]) -> str:
    return ", ".join(str(i) for i in indexes)


_HEADER: Final = ("TRIGGER", "TYPE", "BACKEND", "METRIC", "VALUE", "TARGET", "ACTIVE", "REPLICAS")


def print_table(
    grouped: Sequence[tuple[ScaledResource, Sequence[TriggerResult]]], out: TextIO
) -> None:
    for number, (resource, results) in enumerate(grouped):
        if number:
            out.write("\n")
        bounds = resource.replicas
        limits = f"replicas {bounds.min}..{bounds.max}"
        if bounds.idle is not None:
            limits += f", idle {bounds.idle}"
        out.write(f"{resource.ref} ({limits})\n")
        rows = [_HEADER] + [_row(r) for r in results]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
        for row, result in zip(rows, [None, *results], strict=True):
            cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            tail = ""
            if result is not None and result.error is not None:
                tail = f"  error: {result.error}"
            elif result is not None and result.skipped:
                tail = "  skipped: not an external trigger"
            out.write(f"  {cells}{tail}".rstrip() + "\n")
        for result in results:
            for note in result.notes:
                out.write(f"  note: trigger {result.index}: {note}\n")
        if sum(1 for r in results if not r.skipped) > 1:
            outcome = object_result(resource, results)
            state = {True: "active", False: "inactive", None: "activity unknown"}[outcome.active]
            count = (
                "replicas unknown"
                if outcome.desired_replicas is None
                else f"{outcome.desired_replicas} "
                + ("jobs" if resource.ref.kind == SCALED_JOB else "replicas")
            )
            out.write(f"  => {resource.ref.kind}: {state}, {count} ({outcome.explanation})\n")


def _row(result: TriggerResult) -> tuple[str, ...]:
    return (
        str(result.index),
        result.type,
        result.backend or "-",
        result.metric_name or "-",
        _number(result.value),
        _number(result.target),
        "-" if result.active is None else ("yes" if result.active else "no"),
        "-" if result.desired_replicas is None else str(result.desired_replicas),
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
