"""The protobuf side of the servicer: which gRPC status an error gets, the spec response, the
metric-name check, the caller's deadline, and the keys of a log line or a status-page row.

Only ``scaler.server`` uses it; it holds no state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc

from scaler.engine import Parsed
from scaler.errors import (
    BackendAuthError,
    BackendPermissionDenied,
    BackendTimeout,
    MetadataError,
    Overloaded,
    ScalerError,
    TargetNotFound,
    UnsupportedResource,
)
from scaler.proto import externalscaler_pb2 as pb

R = TypeVar("R")
Context = grpc.aio.ServicerContext[Any, Any]

#: time kept back from the caller's deadline to send the answer
_REPLY_MARGIN: Final = 0.02
# KEDA < 2.7 sent the metric name with its trigger prefix (keda#2640)
_TRIGGER_PREFIX: Final = re.compile(r"s[0-9]+-")

_STATUS: Final[tuple[tuple[type[ScalerError], grpc.StatusCode], ...]] = (
    (MetadataError, grpc.StatusCode.INVALID_ARGUMENT),
    (TargetNotFound, grpc.StatusCode.NOT_FOUND),
    (BackendTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (BackendAuthError, grpc.StatusCode.UNAUTHENTICATED),
    (BackendPermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (UnsupportedResource, grpc.StatusCode.FAILED_PRECONDITION),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def status_of(err: ScalerError) -> grpc.StatusCode:
    """The gRPC status for a deliberate error; broker failures default to UNAVAILABLE."""
    for kind, code in _STATUS:
        if isinstance(err, kind):
            return code
    return grpc.StatusCode.UNAVAILABLE


def ident(ref: pb.ScaledObjectRef) -> tuple[str, str, int]:
    """A trigger's identity on the status page: its object and a hash of its whole request."""
    return ref.namespace, ref.name, hash(ref.SerializeToString(deterministic=True))


def sync(fn: Callable[[], R]) -> Callable[[], Awaitable[R]]:
    """An async handler from a plain function (GetMetricSpec reads no broker)."""

    async def run() -> R:
        return fn()

    return run


def spec_response(parsed: Parsed) -> pb.GetMetricSpecResponse:
    """The one metric spec of a trigger: its metric name and target."""
    return pb.GetMetricSpecResponse(
        metricSpecs=[
            pb.MetricSpec(
                metricName=parsed.metric_name,
                targetSize=math.ceil(parsed.target),
                targetSizeFloat=parsed.target,
            )
        ]
    )


def check_metric_name(requested: str, ours: str) -> None:
    """Refuse a GetMetrics for a metric name this trigger does not serve (MetadataError)."""
    if requested == ours:
        return  # KEDA's poll loop sends the name as GetMetricSpec returned it
    # the HPA may ask in lower case (keda#4954), and KEDA < 2.7 with the `sN-` prefix
    name = requested.strip().casefold()
    if not name or name == ours.casefold():
        return
    prefix = _TRIGGER_PREFIX.match(name)
    if prefix is not None and name[prefix.end() :] == ours.casefold():
        return
    raise MetadataError(
        [
            f"metricName: {requested!r} is not served by this trigger "
            f"(GetMetricSpec returns {ours!r})"
        ]
    )


def budget(context: Context) -> float | None:
    """Seconds the caller still waits, minus the time to answer; None without a deadline."""
    # grpc.aio answers None when the caller set no deadline (KEDA's polling loop sets none)
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return None
    return max(remaining - _REPLY_MARGIN, 0.0)


def log_context(
    ref: pb.ScaledObjectRef, method: str, parsed: Parsed | None = None
) -> dict[str, Any]:
    extra: dict[str, Any] = {"scaled_object": f"{ref.namespace}/{ref.name}", "rpc": method}
    backend = parsed.backend if parsed is not None else ref.scalerMetadata.get("backend")
    if backend:
        extra["backend"] = backend[:32]
    return extra
