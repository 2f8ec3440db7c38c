"""KEDA's scale loop and job executor for one ScaledJob, as a deterministic state machine.

This module owns :class:`JobModel`: what KEDA does at each poll of a ScaledJob with the
triggers' readings, from the queue lengths to the number of jobs it creates, and the life of the
jobs it created. It does no I/O and reads no clock: :meth:`JobModel.poll` takes the simulated
time and the readings and returns a timeline :class:`JobRow`. A ScaledJob has no HPA: none of
H1-H7 (:mod:`scaler.tools.simulate`) applies.

What is modelled, rule by rule (KEDA v2.20: ``pkg/scaling/scale_handler.go``,
``pkg/scaling/scaledjob/metrics.go``, ``pkg/scaling/executor/scale_jobs.go``; the page
concepts/scaling-jobs.md of KEDA's documentation)
=============================================================================================

J1. A poll every ``pollingInterval`` (default 30 s), the first at t=0 (``startScaleLoop``:
    ``checkScalers`` runs, then the timer waits). Nothing happens between polls: no cooldown,
    no HPA.
J2. Per trigger, ``GetMetricSpec`` once: the ScaledJob path calls the scaler's
    ``GetMetricSpecForScaling`` directly, without the cache's rebuild and retry, and the
    external scaler turns a failure into no specs, so a failed or empty answer leaves the
    trigger out of the poll *without* an error (``getScaledJobMetrics``; ``externalScaler.
    GetMetricSpecForScaling``). Then per spec ``GetMetrics`` and ``IsActive``, the pair retried
    once after a failure (``ScalersCache.GetMetricsAndActivityForScaler``); a spec that still
    fails is left out and marks the poll as an error, which only changes the Ready condition.
    ``external-push`` triggers are polled the same way: KEDA ignores their pushes for a
    ScaledJob (``startPushScalers``: "External Push Scaler does not support ScaledJob").
J3. Each spec read gives one ``ScalerMetrics`` (``CalculateQueueLengthAndMaxValue``):
    ``queueLength`` = the sum of the values named as the trigger's *first* spec, as floats
    (``AsApproximateFloat64`` of the milli-unit quantity of K8, so milli-units / 1000);
    ``targetAverageValue`` = the mean of the ``AverageValue`` targets of all the trigger's specs
    (a ``metricType: Value`` spec has none and counts 0); ``maxValue`` =
    ``min(queueLength / targetAverageValue, maxReplicaCount)``, 0 when the target is 0;
    ``isActive`` = whether any of the trigger's specs read so far was active.
J4. ``multipleScalersCalculation`` over the entries (``IsScaledJobActive``), each taking only
    active entries: ``max`` (default) the one with the largest ``queueLength`` (the first of
    equals) and its ``maxValue``; ``min`` the one with the smallest ``queueLength`` (a 0 taken
    first is replaced by the next); ``avg`` the means of both; ``sum`` their sums. The job is
    active iff an entry was taken, or whenever ``minReplicaCount > 0``. ``maxValue`` is capped
    at ``maxReplicaCount`` again; KEDA passes ``scaleTo = ceil(queueLength)`` and
    ``maxScale = ceil(maxValue)`` to the executor.
J5. Jobs counted (``getRunningJobCount``, ``getPendingJobCount``): running = every job without a
    ``Complete`` or ``Failed`` condition, pending ones included; pending = an unfinished job none
    of whose pods is ``Running`` or ``Succeeded`` (``pendingPodConditions``: taken as met once
    the pod runs).
J6. The decision (``getScalingDecision``): with fewer running jobs than ``minReplicaCount``,
    ``minReplicaCount - running`` jobs. Otherwise, with ``r = running - minReplicaCount`` and
    ``max = maxReplicaCount``, the strategy's ``GetEffectiveMaxScale`` (``NewScalingStrategy``):

    * ``default``: ``maxScale - r``;
    * ``custom``: ``min(maxScale - customScalingQueueLengthDeduction
      - int64(r x customScalingRunningJobPercentage), max)``, the product truncated towards 0
      (a percentage Go's ``ParseFloat`` cannot read selects ``default``);
    * ``accurate``: ``max - r`` when ``maxScale + r > max``, else ``maxScale - pending``;
    * ``eager``: ``min(max - r - pending, maxScale)``, and ``scaleTo`` becomes ``max``.

    A negative result is 0 (``RequestJobScale``).
J7. Creation (``RequestJobScale``, ``createJobs``): only when active, ``min(scaleTo, effective)``
    jobs if ``effective > 0``; an inactive poll creates none whatever runs. There is no
    scale-down: jobs are never deleted, they finish.
J8. The jobs' life is the simulator's, not KEDA's: a created job is pending ``--job-pending``
    seconds, then runs ``--job-duration`` seconds and succeeds (one pod, which never fails);
    ``jobTargetRef.activeDeadlineSeconds`` fails it that long after its creation (Kubernetes'
    Job controller, ``DeadlineExceeded``, from the job's start, taken as its creation). With
    ``--drain`` a job has no duration: it succeeds at the first poll after its pod started that
    reads every value as 0, as a job that exits on an empty queue (the consumer you run drained
    it). A job ending exactly at a poll's time has finished for that poll.
    ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit`` only delete finished jobs
    (``cleanUp``), which are never counted again: ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scaler.tools.replicas import VALUE
from scaler.tools.simulate.job_spec import ACCURATE, CUSTOM, EAGER, JobSpec

#: ``--job-duration``'s default, simulated seconds
DEFAULT_JOB_DURATION = 60.0


@dataclass(frozen=True, slots=True)
class SpecReading:
    """One metric spec of a trigger, read as KEDA reads it (J2).

    :param name: the metric name as ``GetMetricSpec`` gave it (without KEDA's ``sN-``)
    :param target: the spec's target in milli-units
    :param value: the summed ``GetMetrics`` values in milli-units; ``None`` when the read failed
    """

    name: str
    target: int
    value: int | None = None
    active: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JobReading:
    """One trigger at one poll: its specs, or why ``GetMetricSpec`` gave none (J2)."""

    index: int
    specs: tuple[SpecReading, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ScalerMetrics:
    """KEDA's ``scaledjob.ScalerMetrics``: one entry per spec read (J3)."""

    queue_length: float
    max_value: float
    active: bool


@dataclass(frozen=True, slots=True)
class JobRow:
    """One poll: what was read, what KEDA computed, and the jobs it created.

    ``running`` and ``pending`` are counted before the creation; ``succeeded`` and ``failed``
    are the jobs that finished since the previous poll.
    """

    time: float
    values: Mapping[str, float | None]
    active: bool
    queue_length: float
    scale_to: int
    max_scale: int
    running: int
    pending: int
    effective: int
    created: int
    succeeded: int
    failed: int
    reason: str


@dataclass(slots=True)
class Job:
    """One job (J8): its pod runs from ``starts``; it succeeds at ``ends`` (``None``: when the
    queue is drained) unless ``deadline`` comes first; ``finished`` once a poll saw it end."""

    created: float
    starts: float
    ends: float | None
    deadline: float | None = None
    finished: float | None = None
    failed: bool = False

    def end(self) -> float | None:
        """When it ends, if known: when it finished, else when it will."""
        if self.finished is not None:
            return self.finished
        planned = [t for t in (self.ends, self.deadline) if t is not None]
        return min(planned, default=None)


def scaler_metrics(reading: JobReading, metric_type: str, max_replicas: int) -> list[ScalerMetrics]:
    """The ``ScalerMetrics`` entries of one trigger's reading (J3)."""
    specs = reading.specs
    if reading.error is not None or not specs:
        return []
    targets = [0.0 if metric_type == VALUE else spec.target / 1000 for spec in specs]
    target = sum(targets) / len(targets)
    entries: list[ScalerMetrics] = []
    active = False
    for position, spec in enumerate(specs):
        if spec.error is not None or spec.value is None:
            continue
        active = active or spec.active
        # the values of spec k > 0 are named after spec k, not the first spec: none counts
        queue = spec.value / 1000 if position == 0 else 0.0
        max_value = min(queue / target, float(max_replicas)) if target != 0 else 0.0
        entries.append(ScalerMetrics(queue, max_value, active))
    return entries


def combine(
    entries: Sequence[ScalerMetrics], calculation: str, min_replicas: int, max_replicas: int
) -> tuple[bool, float, int, int]:
    """``IsScaledJobActive`` (J4): ``(active, queueLength, scaleTo, maxScale)``."""
    queue, max_value, active = 0.0, 0.0, False
    taken = [e for e in entries if e.active]
    if calculation == "min":
        for entry in taken:
            if queue == 0 or entry.queue_length < queue:
                queue, max_value, active = entry.queue_length, entry.max_value, True
    elif calculation in ("avg", "sum"):
        if taken:
            active = True
            queue = sum(e.queue_length for e in taken)
            max_value = sum(e.max_value for e in taken)
            if calculation == "avg":
                queue, max_value = queue / len(taken), max_value / len(taken)
    else:  # max
        for entry in taken:
            if entry.queue_length > queue:
                queue, max_value, active = entry.queue_length, entry.max_value, True
    active = active or min_replicas > 0
    max_value = min(max_value, float(max_replicas))
    return active, queue, math.ceil(queue), math.ceil(max_value)


def effective_max_scale(
    spec: JobSpec, max_scale: int, running: int, pending: int, scale_to: int
) -> tuple[int, int, str]:
    """``getScalingDecision`` and the strategy (J6): ``(effective, scaleTo, how)``; ``effective``
    is not yet floored at 0."""
    low, high = spec.replicas.min, spec.replicas.max
    if running < low:
        wanted = low - running
        return wanted, wanted, f"below minReplicaCount {low}: {low} - {running} = {wanted}"
    r = running - low
    shown = f"running {running} - min {low}" if low else f"running {r}"
    if spec.strategy == CUSTOM:
        share = int(r * spec.percentage)
        effective = min(max_scale - spec.deduction - share, high)
        how = (
            f"custom: min(maxScale {max_scale} - {spec.deduction} - int({r} x "
            f"{spec.percentage:g}), {high}) = {effective}"
        )
        return effective, scale_to, how
    if spec.strategy == ACCURATE:
        if max_scale + r > high:
            effective = high - r
            how = f"accurate: maxScale {max_scale} + {r} > {high}: {high} - {r} = {effective}"
        else:
            effective = max_scale - pending
            how = f"accurate: maxScale {max_scale} - pending {pending} = {effective}"
        return effective, scale_to, how
    if spec.strategy == EAGER:
        effective = min(high - r - pending, max_scale)
        how = (
            f"eager: min({high} - {r} - pending {pending}, maxScale {max_scale}) = {effective}, "
            f"scaleTo {high}"
        )
        return effective, high, how
    effective = max_scale - r
    return effective, scale_to, f"default: maxScale {max_scale} - {shown} = {effective}"


class JobModel:
    """KEDA's scale loop and job executor for one ScaledJob (module doc, J1-J8).

    :param duration: how long a job's pod runs (J8); ``None``: until a poll reads the queue
        empty (``--drain``)
    :param pending: how long a created job waits for its pod to run
    :param running: jobs already running at t=0
    """

    def __init__(
        self,
        spec: JobSpec,
        *,
        duration: float | None = DEFAULT_JOB_DURATION,
        pending: float = 0.0,
        running: int = 0,
    ) -> None:
        if (duration is not None and duration < 0) or pending < 0:
            raise ValueError("a job's duration and pending time cannot be negative")
        self.spec = spec
        self.duration = duration
        self.pending = pending
        self.next_poll = 0.0
        self.jobs: list[Job] = [self._job(0.0, started=True) for _ in range(running)]

    def poll(self, now: float, readings: Mapping[int, JobReading]) -> JobRow:
        """A KEDA poll at ``now`` with every trigger's reading (J1-J8)."""
        self.next_poll = now + self.spec.polling_interval
        spec = self.spec
        values: dict[str, float | None] = {}
        entries: list[ScalerMetrics] = []
        problems: list[str] = []
        drained = True
        for trigger in spec.triggers:
            reading = readings.get(trigger.index) or JobReading(trigger.index, error="not read")
            if reading.error is not None:
                problems.append(f"trigger {trigger.index} left out: {reading.error}")
                drained = False
            for item in reading.specs:
                key = f"s{trigger.index}-{item.name}"
                values[key] = None if item.value is None else item.value / 1000
                if item.error is not None:
                    problems.append(f"{key}: {item.error}")
                drained = drained and item.error is None and item.value == 0
            entries += scaler_metrics(reading, trigger.metric_type, spec.replicas.max)

        succeeded, failed = self._finish(now, drained)
        running = sum(1 for job in self.jobs if job.finished is None)
        pending = sum(1 for job in self.jobs if job.finished is None and job.starts > now)
        low, high = spec.replicas.min, spec.replicas.max
        active, queue, scale_to, max_scale = combine(entries, spec.replicas.calculation, low, high)
        effective, scale_to, how = effective_max_scale(spec, max_scale, running, pending, scale_to)
        effective = max(effective, 0)
        created = 0
        if not active:
            reason = "inactive: no jobs created"
        elif effective <= 0:
            reason = f"{how}: no jobs created"
        else:
            created = min(scale_to, effective)
            reason = f"{how}; created {created}"
            if created < effective:
                reason += f" (scaleTo {scale_to})"
            self.jobs += [self._job(now) for _ in range(created)]
        ends = ((succeeded, "succeeded"), (failed, "failed"))
        finished = [f"{n} {what}" for n, what in ends if n]
        if finished:
            reason += f"; since the last poll {', '.join(finished)}"
        if problems:
            reason += "; " + "; ".join(problems)
        return JobRow(
            now, values, active, queue, scale_to, max_scale, running, pending, effective,
            created, succeeded, failed, reason,
        )  # fmt: skip

    def occupancy(self, until: float) -> list[tuple[float, int]]:
        """Unfinished jobs over time, as ``(time, count)`` steps up to ``until`` (the plot)."""
        changes: dict[float, int] = {0.0: 0}
        for job in self.jobs:
            changes[job.created] = changes.get(job.created, 0) + 1
            end = job.end()
            if end is not None and end <= until:
                changes[end] = changes.get(end, 0) - 1
        steps: list[tuple[float, int]] = []
        count = 0
        for time in sorted(changes):
            count += changes[time]
            steps.append((time, count))
        return steps

    def _job(self, now: float, *, started: bool = False) -> Job:
        starts = now if started else now + self.pending
        ends = None if self.duration is None else starts + self.duration
        deadline = self.spec.active_deadline
        return Job(now, starts, ends, None if deadline is None else now + deadline)

    def _finish(self, now: float, drained: bool) -> tuple[int, int]:
        succeeded = failed = 0
        for job in self.jobs:
            if job.finished is not None:
                continue
            if (
                job.ends is not None
                and job.ends <= now
                and (job.deadline is None or job.ends <= job.deadline)
            ):
                job.finished = job.ends
            elif job.deadline is not None and job.deadline <= now:
                job.finished, job.failed = job.deadline, True
            elif job.ends is None and drained and job.starts <= now:
                job.finished = now
            else:
                continue
            if job.failed:
                failed += 1
            else:
                succeeded += 1
        return succeeded, failed
