"""The gRPC servicer KEDA calls: protobuf in, protobuf out, and the only place errors get a status.

Each RPC is a few lines over the engine; :meth:`ExternalScalerServicer._call` wraps every one of
them with the error-to-status mapping, the RPC metrics and the log line:

================================  =====================
error                             gRPC status
================================  =====================
MetadataError                     INVALID_ARGUMENT
TargetNotFound                    NOT_FOUND
BackendUnavailable (and generic)  UNAVAILABLE
BackendTimeout                    DEADLINE_EXCEEDED
BackendAuthError                  UNAUTHENTICATED
BackendPermissionDenied           PERMISSION_DENIED
UnsupportedResource               FAILED_PRECONDITION
anything else (a bug)             INTERNAL, logged with its traceback
================================  =====================

No path turns a failure into a value of 0 or ``false``: an error lets KEDA's ``fallback`` act,
a 0 would scale the workload to zero during an outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from scaler.backends.base import Evaluation
from scaler.engine import Engine, Parsed
from scaler.errors import (
    MetadataError,
    Overloaded,
    ScalerError,
)
from scaler.metadata import BACKEND_KEY
from scaler.metrics import ScalerMetrics
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.refusals import Refusals
from scaler.rpc import (
    Context,
    R,
    budget,
    check_metric_name,
    ident,
    log_context,
    spec_response,
    status_of,
    sync,
)
from scaler.status import StatusBoard
from scaler.watch import WatchHub

log = logging.getLogger(__name__)


class ExternalScalerServicer(pb_grpc.ExternalScalerServicer):
    """KEDA's ``externalscaler.ExternalScaler`` service over the engine and the watch hub.

    :param engine: parses metadata and measures resources
    :param hub: shared watchers for StreamIsActive
    :param metrics: RPC, stream and push metrics
    :param shutdown: set when the service stops; open streams then end with status OK
    :param max_streams: open streams (both kinds) beyond which a new one is RESOURCE_EXHAUSTED
    :param status: where calls, values and errors are kept for the status page (None: off)
    """

    def __init__(
        self,
        engine: Engine,
        hub: WatchHub,
        metrics: ScalerMetrics,
        shutdown: asyncio.Event,
        max_streams: int = 10_000,
        status: StatusBoard | None = None,
    ) -> None:
        self._max_streams = max_streams
        self._status = status
        self.open_streams = 0
        self._engine = engine
        self._hub = hub
        self._metrics = metrics
        self._shutdown = shutdown
        self._refusals = Refusals(engine.backends, metrics.metadata_refused)

    async def GetMetricSpec(self, request: pb.ScaledObjectRef, context: Context) -> Any:
        def spec() -> pb.GetMetricSpecResponse:
            return spec_response(self._parse(request))

        return await self._call("GetMetricSpec", request, context, sync(spec))

    async def GetMetrics(self, request: pb.GetMetricsRequest, context: Context) -> Any:
        ref = request.scaledObjectRef

        async def metrics() -> pb.GetMetricsResponse:
            parsed = self._parse(ref)
            check_metric_name(request.metricName, parsed.metric_name)
            evaluation = await self._engine.evaluate(parsed, budget=budget(context))
            self._evaluated(ref, parsed, evaluation)
            return pb.GetMetricsResponse(
                metricValues=[
                    pb.MetricValue(
                        metricName=request.metricName or parsed.metric_name,
                        metricValue=math.ceil(evaluation.value),
                        metricValueFloat=evaluation.value,
                    )
                ]
            )

        return await self._call("GetMetrics", ref, context, metrics)

    async def IsActive(self, request: pb.ScaledObjectRef, context: Context) -> Any:
        async def active() -> pb.IsActiveResponse:
            parsed = self._parse(request)
            evaluation = await self._engine.evaluate(parsed, budget=budget(context))
            self._evaluated(request, parsed, evaluation)
            return pb.IsActiveResponse(result=evaluation.active)

        return await self._call("IsActive", request, context, active)

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.IsActiveResponse]:
        """The current state at once, then ``true`` on every inactive-to-active transition only.

        Repeated ``true`` would postpone scale-to-zero (http-add-on#1792) and KEDA ignores
        ``false``, so nothing else is sent. While the resource cannot be read the stream stays
        open and silent; it ends with status OK when the service shuts down.
        """
        method = "StreamIsActive"
        async with self._stream(method, request, context) as parsed:
            last: bool | None = None
            failing = False
            async with self._hub.subscribe(parsed) as subscription:
                async for item in subscription:
                    if isinstance(item, ScalerError):
                        # once per outage, not once per watch interval
                        level = logging.DEBUG if failing else logging.WARNING
                        failing = True
                        log.log(
                            level,
                            "stream open, resource unreadable, nothing sent: %s",
                            item,
                            extra=log_context(request, method, parsed),
                        )
                        continue
                    failing = False
                    evaluation = self._engine.assess(parsed, item)
                    self._evaluated(request, parsed, evaluation)
                    active = evaluation.active
                    if last is None or (active and not last):
                        self._metrics.pushed(
                            parsed.backend, "initial" if last is None else "activation"
                        )
                        yield pb.IsActiveResponse(result=active)
                    last = active

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        """The specs at once (never empty, equal to GetMetricSpec's); the stream then idles.

        A trigger's specs are a function of its metadata, which cannot change under an open
        stream (KEDA reopens streams on every ScaledObject change).
        """
        async with self._stream("StreamMetricSpec", request, context) as parsed:
            yield spec_response(parsed)
            await self._shutdown.wait()

    def _parse(self, ref: pb.ScaledObjectRef) -> Parsed:
        # the deterministic serialization is made in C: a cheap memo key for the metadata
        memo = ref.SerializeToString(deterministic=True)
        parsed = self._engine.parse(ref.scalerMetadata, memo)
        if self._status is not None:
            trigger = parsed.trigger
            self._status.parsed(
                (ref.namespace, ref.name, hash(memo)),
                parsed.backend,
                trigger.resource_label(),
                parsed.metric_name,
                trigger.target,
            )
        return parsed

    def _evaluated(self, ref: pb.ScaledObjectRef, parsed: Parsed, evaluation: Evaluation) -> None:
        if self._status is not None:
            self._status.evaluated(ident(ref), parsed.backend, evaluation)

    async def _call(
        self,
        method: str,
        ref: pb.ScaledObjectRef,
        context: Context,
        handler: Callable[[], Awaitable[R]],
    ) -> R:
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        message = ""
        try:
            return await handler()
        except ScalerError as err:
            code, message = status_of(err), str(err)
            self._refused(ref, err)
            await context.abort(code, message)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            log.exception("bug in %s", method, extra=log_context(ref, method))
            message = f"internal error in {method}; see the scaler's log"
            await context.abort(code, message)
        finally:
            self._observe(method, ref, code, start, message)

    def _refused(self, ref: pb.ScaledObjectRef, err: ScalerError) -> None:
        """Bad metadata reaches the user: logged once per ScaledObject and error, counted."""
        if isinstance(err, MetadataError):
            backend = ref.scalerMetadata.get(BACKEND_KEY, "")
            self._refusals.refused(ref.namespace, ref.name, backend, err)

    def _stream(self, method: str, ref: pb.ScaledObjectRef, context: Context) -> _StreamScope:
        return _StreamScope(self, method, ref, context)

    def _observe(
        self,
        method: str,
        ref: pb.ScaledObjectRef,
        code: grpc.StatusCode,
        start: float,
        message: str = "",
    ) -> None:
        seconds = time.perf_counter() - start
        self._metrics.rpc(method, code.name, seconds)
        if self._status is not None and code != grpc.StatusCode.CANCELLED:
            failed = None if code == grpc.StatusCode.OK else (code.name, message)
            backend = ref.scalerMetadata.get(BACKEND_KEY, "")
            self._status.call(ident(ref), backend, method, failed)
        # bad metadata is told once per ScaledObject by the refusals, not at every poll
        if code in (
            grpc.StatusCode.OK,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.INVALID_ARGUMENT,
        ):
            level = logging.DEBUG
        elif code == grpc.StatusCode.INTERNAL:
            level = logging.ERROR
        else:
            level = logging.WARNING
        if log.isEnabledFor(level):
            extra = log_context(ref, method)
            extra.update(code=code.name, duration_ms=round(seconds * 1000, 3))
            log.log(level, "%s %s", method, code.name, extra=extra)


class _StreamScope:
    """``async with``: parse the trigger, count the stream, map errors, observe the end."""

    def __init__(
        self,
        servicer: ExternalScalerServicer,
        method: str,
        ref: pb.ScaledObjectRef,
        context: Context,
    ) -> None:
        self._servicer = servicer
        self._method = method
        self._ref = ref
        self._context = context
        self._start = time.perf_counter()
        self._code = grpc.StatusCode.OK
        self._message = ""
        self._counted: str | None = None  # the backend, once counted on the status board

    async def __aenter__(self) -> Parsed:
        servicer = self._servicer
        servicer._metrics.stream_opened(self._method)
        servicer.open_streams += 1
        try:
            if servicer.open_streams > servicer._max_streams:
                raise Overloaded(
                    f"{servicer._max_streams} streams are open, the most this scaler accepts "
                    "(--max-streams); KEDA will retry"
                )
            parsed = servicer._parse(self._ref)
            if servicer._status is not None:
                self._counted = parsed.backend
                servicer._status.stream(ident(self._ref), parsed.backend, +1)
            return parsed
        except ScalerError as err:
            await self.__aexit__(type(err), err, None)
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: object
    ) -> bool:
        servicer = self._servicer
        try:
            if err is None:
                return False
            if isinstance(err, ScalerError):
                self._code, self._message = status_of(err), str(err)
                servicer._refused(self._ref, err)
                await self._context.abort(self._code, self._message)
            elif isinstance(err, asyncio.CancelledError | GeneratorExit):
                self._code = grpc.StatusCode.CANCELLED
            elif isinstance(err, Exception) and not isinstance(err, grpc.aio.AbortError):
                self._code = grpc.StatusCode.INTERNAL
                log.error(
                    "bug in %s",
                    self._method,
                    exc_info=err,
                    extra=log_context(self._ref, self._method),
                )
                await self._context.abort(
                    self._code, f"internal error in {self._method}; see the scaler's log"
                )
            return False
        finally:
            if not getattr(self, "_done", False):
                self._done = True
                servicer.open_streams -= 1
                servicer._metrics.stream_closed(self._method)
                if servicer._status is not None and self._counted is not None:
                    servicer._status.stream(ident(self._ref), self._counted, -1)
                servicer._observe(self._method, self._ref, self._code, self._start, self._message)
