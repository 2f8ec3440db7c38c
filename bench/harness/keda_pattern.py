"""KEDA's polling pattern against a scaler at a steady rate, every call's outcome reported.

Per ScaledObject, one round is what KEDA and the HPA send between them: ``GetMetricSpec`` and
``GetMetrics`` (the HPA through KEDA's metrics adapter) and ``IsActive`` (KEDA's scale loop).
:class:`KedaPattern` offers rounds over a list of ScaledObjects, one object after another, at
``rate`` RPCs per second, without waiting for answers (KEDA does not throttle on a slow scaler),
and hands each :class:`Outcome` to a callback.

Used by ``bench.soak`` (ten minutes of it with broker restarts) and by the fault tests in
``tests/integration/test_faults_under_load.py``, which check every outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

#: the RPCs of one round, in KEDA's order
ROUND = ("GetMetricSpec", "GetMetrics", "IsActive")


@dataclass(frozen=True)
class Outcome:
    """One RPC: which, for which ScaledObject, its status and duration, and what it answered."""

    method: str
    name: str  #: the ScaledObject's name
    code: str  #: a grpc.StatusCode name
    started: float  #: time.monotonic() when the call was sent
    seconds: float
    value: float | bool | None  #: GetMetrics' value, IsActive's result; None otherwise
    details: str = ""  #: the error message, for a call that failed


class KedaPattern:
    """Offers KEDA's rounds over ``objects`` at ``rate`` RPCs/s until :meth:`aclose`.

    :param deadline: the client deadline of every call in seconds (KEDA's gRPC client uses the
        ScaledObject's timeout; the HPA's metrics path gives up after about 3 s)
    :param on_outcome: called with every finished call's :class:`Outcome`
    """

    def __init__(
        self,
        stub: pb_grpc.ExternalScalerAsyncStub,
        objects: Sequence[pb.ScaledObjectRef],
        rate: float,
        on_outcome: Callable[[Outcome], None],
        deadline: float = 5.0,
    ) -> None:
        if not objects:
            raise ValueError("KedaPattern needs at least one ScaledObject")
        self._stub = stub
        self._objects = objects
        self._pause = len(ROUND) / rate
        self._deadline = deadline
        self._on_outcome = on_outcome
        self._offering = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start offering load (call from the running event loop)."""
        self._offering.set()
        self._task = asyncio.get_running_loop().create_task(self._offer())

    async def pause(self) -> None:
        """Stop offering new rounds and wait for the calls in flight to finish."""
        self._offering.clear()
        await self.drain()

    def resume(self) -> None:
        self._offering.set()

    async def drain(self) -> None:
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop for good: no new calls; the ones in flight are awaited, not cancelled."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.drain()

    async def _offer(self) -> None:
        loop = asyncio.get_running_loop()
        next_round, i = loop.time(), 0
        while True:
            if not self._offering.is_set():
                await self._offering.wait()
                next_round = loop.time()  # a pause is not a backlog to catch up on
            ref = self._objects[i % len(self._objects)]
            i += 1
            for method in ROUND:
                task = loop.create_task(self._call(method, ref))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            # a fixed schedule, not sleep-after-send: slow answers must not lower the rate
            next_round = max(next_round + self._pause, loop.time() - 1.0)
            await asyncio.sleep(max(0.0, next_round - loop.time()))

    async def _call(self, method: str, ref: pb.ScaledObjectRef) -> None:
        started = time.monotonic()
        value: float | bool | None = None
        details = ""
        try:
            if method == "GetMetricSpec":
                await self._stub.GetMetricSpec(ref, timeout=self._deadline)
            elif method == "GetMetrics":
                request = pb.GetMetricsRequest(scaledObjectRef=ref, metricName="")
                reply = await self._stub.GetMetrics(request, timeout=self._deadline)
                value = reply.metricValues[0].metricValueFloat
            else:
                value = (await self._stub.IsActive(ref, timeout=self._deadline)).result
            code = "OK"
        except grpc.aio.AioRpcError as err:
            code, details = err.code().name, err.details() or ""
        seconds = time.monotonic() - started
        self._on_outcome(Outcome(method, ref.name, code, started, seconds, value, details))
