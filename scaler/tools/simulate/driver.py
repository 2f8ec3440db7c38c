"""The live driver: runs a :class:`~.model.ScaleModel` against a running scaler (K1, K5, K7).

This module owns time and I/O for ``simulate``: the clock (:class:`CompressedClock`, the real
one sped up by ``--speed``), the readings (:class:`RemoteSource`, the calls and retries KEDA
makes through :mod:`scaler.tools.remote`, converted by :mod:`scaler.tools.replicas`), the event
loop (:func:`drive`) and the ``StreamIsActive`` followers of ``external-push`` triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Final, Protocol

from scaler.errors import RemoteError
from scaler.tools import remote
from scaler.tools.replicas import keda_target, keda_value
from scaler.tools.simulate.model import POLL, Row, ScaleModel, TriggerSample
from scaler.tools.simulate.spec import HpaMetric, ObjectSpec

DEFAULT_SPEED: Final = 1.0

#: KEDA's StreamIsActive reconnect backoff (keda-protocol.md 1.8), simulated seconds
_STREAM_BACKOFF: Final = 2.0
_STREAM_BACKOFF_MAX: Final = 60.0


class Clock(Protocol):
    """Simulated time for :func:`drive`."""

    def start(self) -> None: ...

    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...


class CompressedClock:
    """The real clock, ``speed`` simulated seconds per real second, from :meth:`start`."""

    def __init__(self, speed: float = DEFAULT_SPEED) -> None:
        if not speed > 0:
            raise ValueError("speed must be greater than 0")
        self.speed = speed
        self._origin: float | None = None

    def start(self) -> None:
        self._origin = time.monotonic()

    def now(self) -> float:
        if self._origin is None:
            return 0.0
        return (time.monotonic() - self._origin) * self.speed

    async def sleep_until(self, when: float) -> None:
        delay = (when - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)


class MetricSource(Protocol):
    """Where :func:`drive` gets its readings."""

    async def read(self, triggers: Sequence[int], *, hpa: bool) -> dict[int, TriggerSample]: ...

    def stream(self, trigger: int) -> AsyncGenerator[bool, None]: ...


class RemoteSource:
    """Readings from a live scaler, with the calls and retries KEDA makes (K1, K7, K8)."""

    def __init__(self, client: remote.ScalerClient, refs: Mapping[int, remote.ObjectRef]) -> None:
        self._client = client
        self._refs = dict(refs)
        #: reads that failed, for the exit status
        self.failures = 0

    async def hpa_metrics(self, spec: ObjectSpec) -> list[HpaMetric]:
        """The HPA's metrics, from one ``GetMetricSpec`` per trigger (K6).

        :raises RemoteError: a trigger has no spec: KEDA could not build the HPA
        """
        metrics: list[HpaMetric] = []
        for trigger in spec.triggers:
            try:
                specs = await self._specs(self._refs[trigger.index])
            except RemoteError as err:
                where = f"trigger {trigger.index}: {err.details}"
                raise RemoteError(err.code_name, where) from None
            for item in specs:
                metrics.append(
                    HpaMetric(trigger.index, item.name, keda_target(item), trigger.metric_type)
                )
        return metrics

    async def read(self, triggers: Sequence[int], *, hpa: bool) -> dict[int, TriggerSample]:
        samples = await asyncio.gather(*(self._read(index, hpa) for index in triggers))
        self.failures += sum(1 for s in samples if s.error is not None)
        return {s.index: s for s in samples}

    def stream(self, trigger: int) -> AsyncGenerator[bool, None]:
        return self._client.stream_is_active(self._refs[trigger])

    async def _read(self, index: int, hpa: bool) -> TriggerSample:
        ref = self._refs[index]
        if hpa:
            # K7: the metrics adapter asks every trigger for its specs before reading one
            others = [r for i, r in self._refs.items() if i != index]
            await asyncio.gather(*(self._specs_quietly(r) for r in others))
        try:
            specs = await self._specs(ref)
        except RemoteError as err:
            return TriggerSample(index, error=str(err), spec_failed=True)
        values: dict[str, int] = {}
        active = False
        # with several specs the last one's activity wins, as in KEDA's getScalerState
        for item in specs:
            try:
                value, active = await self._metric_and_activity(ref, item.name)
            except RemoteError as err:
                return TriggerSample(index, values, error=str(err))
            if value is not None:
                values[item.name] = value
        return TriggerSample(index, values, active=active)

    async def _specs(self, ref: remote.ObjectRef) -> tuple[remote.MetricSpec, ...]:
        # a failed or empty GetMetricSpec is retried once after KEDA rebuilds the scaler
        for attempt in (1, 2):
            try:
                specs = await self._client.metric_spec(ref)
            except RemoteError:
                if attempt == 2:
                    raise
                continue
            if specs:
                return specs
        raise RemoteError("EMPTY", "got empty metric spec")

    async def _specs_quietly(self, ref: remote.ObjectRef) -> None:
        with contextlib.suppress(RemoteError):
            await self._client.metric_spec(ref)

    async def _metric_and_activity(
        self, ref: remote.ObjectRef, name: str
    ) -> tuple[int | None, bool]:
        return await metric_and_activity(self._client, ref, name)


async def metric_and_activity(
    client: remote.ScalerClient, ref: remote.ObjectRef, name: str
) -> tuple[int | None, bool]:
    """``GetMetrics`` then ``IsActive``, as KEDA's ``GetMetricsAndActivityForScaler`` makes
    them: a failure of either retries the pair once (K1).

    :returns: the value in milli-units (``None`` for an empty answer) and the activity
    :raises RemoteError: the second attempt failed too
    """
    for attempt in (1, 2):
        try:
            values = await client.metrics(ref, name)
            active = await client.is_active(ref)
        except RemoteError:
            if attempt == 2:
                raise
            continue
        return (keda_value(values) if values else None), active
    raise AssertionError("unreachable")


async def drive(
    model: ScaleModel,
    source: MetricSource,
    clock: Clock,
    duration: float,
    emit: Callable[[Row], None],
) -> float:
    """Run ``model`` against ``source`` for ``duration`` simulated seconds, emitting each row.

    :returns: the worst lateness of a scheduled event, in simulated seconds (reads slower than
        ``--speed`` allows)
    """
    lock = asyncio.Lock()
    late = 0.0
    clock.start()
    async with asyncio.TaskGroup() as group:
        followers = [
            group.create_task(_follow(model, source, clock, lock, t.index, duration, emit))
            for t in model.spec.triggers
            if t.push
        ]
        try:
            while True:
                when, kind = model.next_event()
                if when > duration:
                    break
                await clock.sleep_until(when)
                late = max(late, clock.now() - when)
                async with lock:
                    if kind == POLL:
                        every = [t.index for t in model.spec.triggers]
                        emit(model.poll(when, await source.read(every, hpa=False)))
                    else:
                        wanted = model.hpa_reads()
                        samples = await source.read(wanted, hpa=True) if wanted else {}
                        row = model.hpa_sync(when, samples)
                        if row is not None:
                            emit(row)
        finally:
            for task in followers:
                task.cancel()
    return late


async def _follow(
    model: ScaleModel,
    source: MetricSource,
    clock: Clock,
    lock: asyncio.Lock,
    index: int,
    duration: float,
    emit: Callable[[Row], None],
) -> None:
    # K5: one StreamIsActive per push trigger, reopened with KEDA's backoff
    backoff = _STREAM_BACKOFF
    while True:
        clean = False
        with contextlib.suppress(RemoteError):
            async with contextlib.aclosing(source.stream(index)) as events:
                async for active in events:
                    if not active:
                        continue  # KEDA >= 2.18 ignores false
                    async with lock:
                        now = model.push_time(clock.now())
                        if now > duration:
                            return
                        emit(model.push(now, index))
            clean = True
        if clean:
            backoff = _STREAM_BACKOFF
        await clock.sleep_until(clock.now() + backoff)
        backoff = min(backoff * 2, _STREAM_BACKOFF_MAX)
