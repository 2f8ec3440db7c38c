"""What ``simulate`` needs of a ScaledJob, and how it is taken from the manifest model.

This module owns :class:`JobSpec` (bounds, ``pollingInterval``, the ``scalingStrategy`` and the
external triggers of one ScaledJob) and :func:`load_job`, which reads those fields from the raw
``spec`` the shared manifest model of :mod:`scaler.tools.manifest` kept, the way KEDA v2.20
reads them (``apis/keda/v1alpha1/scaledjob_types.go`` and ``NewScalingStrategy`` in
``pkg/scaling/executor/scale_jobs.go``). It refuses what the model cannot simulate, listing
every problem at once, and notes what it ignores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from scaler.errors import ManifestError
from scaler.tools.manifest import EXTERNAL_TYPES, Replicas, ScaledRef, ScaledResource
from scaler.tools.replicas import AVERAGE_VALUE, VALUE
from scaler.tools.simulate.spec import DEFAULT_POLLING_INTERVAL, SimTrigger, int_field

DEFAULT: Final = "default"
CUSTOM: Final = "custom"
ACCURATE: Final = "accurate"
EAGER: Final = "eager"
#: ``scalingStrategy.strategy``; KEDA takes anything else (and nothing) as ``default``
STRATEGIES: Final = (DEFAULT, CUSTOM, ACCURATE, EAGER)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the job model needs of a ScaledJob.

    ``replicas`` holds ``minReplicaCount``, ``maxReplicaCount`` and
    ``scalingStrategy.multipleScalersCalculation``; ``deduction`` and ``percentage`` are the
    ``custom`` strategy's ``customScalingQueueLengthDeduction`` and
    ``customScalingRunningJobPercentage``; ``active_deadline`` is
    ``jobTargetRef.activeDeadlineSeconds``; ``notes`` say what was ignored or changed.
    """

    ref: ScaledRef
    replicas: Replicas
    triggers: tuple[SimTrigger, ...]
    polling_interval: int = DEFAULT_POLLING_INTERVAL
    strategy: str = DEFAULT
    deduction: int = 0
    percentage: float = 0.0
    active_deadline: int | None = None
    notes: tuple[str, ...] = ()


def load_job(resource: ScaledResource) -> JobSpec:
    """The ScaledJob ``resource`` (from :func:`scaler.tools.manifest.load_manifest`) as the
    model needs it.

    :raises ManifestError: listing every problem
    """
    where = str(resource.ref)
    raw = resource.spec
    problems: list[str] = []
    notes: list[str] = []

    polling = int_field(raw, "pollingInterval", DEFAULT_POLLING_INTERVAL, where, problems, low=1)
    strategy, deduction, percentage = _strategy(raw.get("scalingStrategy"), where, problems, notes)
    deadline = None
    target = raw.get("jobTargetRef")
    if isinstance(target, dict) and target.get("activeDeadlineSeconds") is not None:
        deadline = int_field(target, "activeDeadlineSeconds", 0, where, problems, low=1)
    limits = [k for k in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit") if k in raw]
    if limits:
        notes.append(
            f"{' and '.join(limits)} ignored: KEDA uses them only to delete finished jobs, "
            "which it does not count as running"
        )

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
        metric_type = raw_triggers[trigger.index].get("metricType") or AVERAGE_VALUE
        if metric_type not in (AVERAGE_VALUE, VALUE):
            problems.append(f"{at}.metricType must be {AVERAGE_VALUE} or {VALUE}")
        elif metric_type == VALUE:
            notes.append(
                f"trigger {trigger.index} has metricType: Value: KEDA's ScaledJob reads only "
                "AverageValue targets, so its maxScale is always 0"
            )
        if trigger.type == "external-push":
            notes.append(
                f"trigger {trigger.index} is external-push: KEDA polls it like external for a "
                "ScaledJob and ignores its StreamIsActive pushes"
            )
        triggers.append(SimTrigger(trigger.index, trigger.type, trigger.metadata, metric_type))
    if problems:
        raise ManifestError(problems)
    return JobSpec(
        resource.ref,
        resource.replicas,
        tuple(triggers),
        polling_interval=polling,
        strategy=strategy,
        deduction=deduction,
        percentage=percentage,
        active_deadline=deadline,
        notes=tuple(notes),
    )


def _strategy(
    raw: Any, where: str, problems: list[str], notes: list[str]
) -> tuple[str, int, float]:
    # NewScalingStrategy: custom needs a percentage Go's ParseFloat reads, else default
    if raw is None:
        return DEFAULT, 0, 0.0
    at = f"{where}: spec.scalingStrategy"
    if not isinstance(raw, dict):
        problems.append(f"{at} is not a mapping")
        return DEFAULT, 0, 0.0
    if raw.get("pendingPodConditions"):
        notes.append(
            "scalingStrategy.pendingPodConditions taken as met once a job's pod runs "
            "(after --job-pending)"
        )
    chosen = raw.get("strategy") or DEFAULT
    if chosen not in STRATEGIES:
        notes.append(
            f"scalingStrategy.strategy {chosen!r} is not one of {', '.join(STRATEGIES)}: "
            "KEDA uses default"
        )
        return DEFAULT, 0, 0.0
    if chosen != CUSTOM:
        return str(chosen), 0, 0.0
    text = raw.get("customScalingRunningJobPercentage")
    if text is not None and not isinstance(text, str):
        problems.append(
            f'{at}.customScalingRunningJobPercentage must be a string such as "0.5" '
            "(the CRD declares a string: quote the value)"
        )
        return DEFAULT, 0, 0.0
    percentage = _go_float(text)
    if percentage is None:
        notes.append(
            f"scalingStrategy custom without a customScalingRunningJobPercentage KEDA can read "
            f"({text!r}): KEDA uses default"
        )
        return DEFAULT, 0, 0.0
    if raw.get("customScalingQueueLengthDeduction") is None:
        problems.append(
            f"{at}.customScalingQueueLengthDeduction is required with strategy custom "
            "(KEDA's customScalingStrategy reads it unconditionally)"
        )
        return DEFAULT, 0, 0.0
    deduction = raw["customScalingQueueLengthDeduction"]
    if isinstance(deduction, bool) or not isinstance(deduction, int):
        problems.append(f"{at}.customScalingQueueLengthDeduction must be an integer")
        return DEFAULT, 0, 0.0
    return CUSTOM, deduction, percentage


def _go_float(text: str | None) -> float | None:
    # strconv.ParseFloat(s, 64), finite values only (a NaN would make KEDA's int64() undefined)
    if text is None or "_" in text or text != text.strip():
        return None  # Python's float() reads 1_000 and " 1", Go's ParseFloat does not
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
