"""The live driver of a ScaledJob: runs a :class:`~.jobs.JobModel` against a running scaler.

This module owns the ScaledJob's readings (:class:`JobSource`: the calls KEDA's ScaledJob loop
makes through :mod:`scaler.tools.remote`, J2) and its event loop (:func:`drive_jobs`: one poll
per ``pollingInterval``, J1), on the clocks of :mod:`.driver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from scaler.errors import RemoteError
from scaler.tools import remote
from scaler.tools.replicas import keda_target
from scaler.tools.simulate.driver import Clock, metric_and_activity
from scaler.tools.simulate.jobs import JobModel, JobReading, JobRow, SpecReading


class JobMetricSource(Protocol):
    """Where :func:`drive_jobs` gets its readings."""

    async def read(self, triggers: Sequence[int]) -> dict[int, JobReading]: ...


class JobSource:
    """Readings from a live scaler, with the calls KEDA's ScaledJob loop makes (J2)."""

    def __init__(self, client: remote.ScalerClient, refs: Mapping[int, remote.ObjectRef]) -> None:
        self._client = client
        self._refs = dict(refs)
        #: reads that failed, for the exit status
        self.failures = 0

    async def metric_names(self, triggers: Sequence[int]) -> list[str]:
        """The table's columns, ``s{index}-{name}``, from one ``GetMetricSpec`` per trigger.

        :raises RemoteError: a trigger has no spec (KEDA would leave it out of every poll)
        """
        keys: list[str] = []
        for index in triggers:
            try:
                specs = await self._client.metric_spec(self._refs[index])
            except RemoteError as err:
                raise RemoteError(err.code_name, f"trigger {index}: {err.details}") from None
            if not specs:
                raise RemoteError("EMPTY", f"trigger {index}: got empty metric spec")
            keys += [f"s{index}-{item.name}" for item in specs]
        return keys

    async def read(self, triggers: Sequence[int]) -> dict[int, JobReading]:
        readings = await asyncio.gather(*(self._read(index) for index in triggers))
        self.failures += sum(
            (r.error is not None) + sum(s.error is not None for s in r.specs) for r in readings
        )
        return {r.index: r for r in readings}

    async def _read(self, index: int) -> JobReading:
        ref = self._refs[index]
        # GetMetricSpecForScaling, called directly: no retry, and a failure is no spec
        try:
            specs = await self._client.metric_spec(ref)
        except RemoteError as err:
            return JobReading(index, error=f"GetMetricSpec: {err}")
        if not specs:
            return JobReading(index, error="GetMetricSpec: got empty metric spec")
        read: list[SpecReading] = []
        for item in specs:
            target = keda_target(item)
            try:
                value, active = await metric_and_activity(self._client, ref, item.name)
            except RemoteError as err:
                read.append(SpecReading(item.name, target, error=str(err)))
                continue
            # an empty GetMetrics answer sums to a queue length of 0
            read.append(SpecReading(item.name, target, value or 0, active))
        return JobReading(index, tuple(read))


async def drive_jobs(
    model: JobModel,
    source: JobMetricSource,
    clock: Clock,
    duration: float,
    emit: Callable[[JobRow], None],
) -> float:
    """Poll ``source`` for ``model`` every ``pollingInterval`` for ``duration`` simulated seconds,
    emitting each row.

    :returns: the worst lateness of a poll, in simulated seconds
    """
    late = 0.0
    clock.start()
    every = [t.index for t in model.spec.triggers]
    while model.next_poll <= duration:
        when = model.next_poll
        await clock.sleep_until(when)
        late = max(late, clock.now() - when)
        emit(model.poll(when, await source.read(every)))
    return late
