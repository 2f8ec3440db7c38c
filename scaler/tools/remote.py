"""A small async client for a *running* scaler, speaking KEDA's ``externalscaler`` gRPC API.

This module owns the client side of the protocol: the channel (insecure by default, TLS with an
optional root CA file and an optional client certificate for mTLS), the four calls a KEDA
operator makes, and the conversion of protobuf messages and gRPC errors into plain Python values.
Apart from :mod:`scaler.server` and :mod:`scaler.app`, nothing else imports ``grpc`` or the
generated code; the other tools (``simulate``) use this module instead.

The values are returned as the scaler sent them, both the integer and the float field: deciding
which one KEDA uses (``metricValueFloat`` when > 0, else ``metricValue``; keda-protocol.md 1.10)
is :mod:`scaler.tools.replicas`' business, because it is KEDA's rule, not the wire's.

Every failed call raises :class:`RemoteError` with the gRPC status name (``UNAVAILABLE``,
``INVALID_ARGUMENT``, ...) and the server's message, which this scaler guarantees never quotes a
secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

import grpc

from scaler.errors import RemoteError
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

#: longest wait for one unary call; KEDA's own calls on the HPA path get about 3 s in all
DEFAULT_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What KEDA sends as ``ScaledObjectRef``; ``metadata`` may hold credentials (not in repr)."""

    name: str
    namespace: str
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of ``GetMetricSpec``: the metric name (without KEDA's ``sN-``) and its target."""

    name: str
    target_size: int
    target_size_float: float


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One entry of ``GetMetrics``, both fields as sent."""

    name: str
    value: int
    value_float: float


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS to the scaler: verify it with ``ca_file`` (system roots when ``None``), and present
    ``cert_file``/``key_file`` as a client certificate when the server asks for mTLS.

    ``server_name`` overrides the name checked in the server's certificate, for a scaler reached
    through ``kubectl port-forward`` at ``localhost``.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")


class ScalerClient:
    """``async with ScalerClient("localhost:9090") as client: await client.is_active(ref)``.

    :param address: ``host:port`` of the scaler's gRPC port
    :param tls: ``None`` for a plaintext channel (what ``keda-queue-scaler serve`` offers today)
    :param timeout: deadline of each unary call, in seconds; streams have none
    """

    def __init__(
        self, address: str, *, tls: TlsConfig | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.address = address
        self._tls = tls
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.ExternalScalerAsyncStub | None = None

    async def __aenter__(self) -> ScalerClient:
        """Open the channel; reads the TLS files, so ``OSError`` names a missing one."""
        if self._tls is None:
            channel = grpc.aio.insecure_channel(self.address)
        else:
            credentials = await asyncio.to_thread(_credentials, self._tls)
            options = []
            if self._tls.server_name:
                options.append(("grpc.ssl_target_name_override", self._tls.server_name))
            channel = grpc.aio.secure_channel(self.address, credentials, options=options)
        self._channel = channel
        self._stub = pb_grpc.ExternalScalerStub(channel)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    async def metric_spec(self, ref: ObjectRef) -> tuple[MetricSpec, ...]:
        """``GetMetricSpec``: the trigger's metrics and targets."""
        try:
            response = await self._open().GetMetricSpec(_ref(ref), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _remote(err) from None
        return tuple(
            MetricSpec(s.metricName, s.targetSize, s.targetSizeFloat) for s in response.metricSpecs
        )

    async def metrics(self, ref: ObjectRef, metric_name: str) -> tuple[MetricValue, ...]:
        """``GetMetrics`` for one metric name, as KEDA sends it (without the ``sN-`` prefix)."""
        request = pb.GetMetricsRequest(scaledObjectRef=_ref(ref), metricName=metric_name)
        try:
            response = await self._open().GetMetrics(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _remote(err) from None
        return tuple(
            MetricValue(v.metricName, v.metricValue, v.metricValueFloat)
            for v in response.metricValues
        )

    async def is_active(self, ref: ObjectRef) -> bool:
        """``IsActive``."""
        try:
            response = await self._open().IsActive(_ref(ref), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _remote(err) from None
        return response.result

    async def stream_is_active(self, ref: ObjectRef) -> AsyncGenerator[bool, None]:
        """``StreamIsActive``: every ``result`` the server sends, until it ends the stream.

        A stream the server ends with status OK simply stops; any other end raises
        :class:`RemoteError`. Closing the iterator (``contextlib.aclosing``) cancels the call.
        """
        call = self._open().StreamIsActive(_ref(ref))
        try:
            async for response in call:
                yield response.result
        except grpc.aio.AioRpcError as err:
            raise _remote(err) from None
        finally:
            call.cancel()

    def _open(self) -> pb_grpc.ExternalScalerAsyncStub:
        if self._stub is None:
            raise RuntimeError("ScalerClient is used outside `async with`")
        return self._stub


def _ref(ref: ObjectRef) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(
        name=ref.name, namespace=ref.namespace, scalerMetadata=dict(ref.metadata)
    )


def _remote(err: grpc.aio.AioRpcError) -> RemoteError:
    return RemoteError(err.code().name, err.details() or "")


def _credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    root = Path(tls.ca_file).read_bytes() if tls.ca_file else None
    key = Path(tls.key_file).read_bytes() if tls.key_file else None
    chain = Path(tls.cert_file).read_bytes() if tls.cert_file else None
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
