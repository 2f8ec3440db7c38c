"""Python's own gRPC ceiling: a grpc.aio ExternalScaler whose handlers return constants.

    python -m bench.harness.noop_server --grpc-port 9191 [--bind-address 127.0.0.1] [--work timeout]

``bench.keda_load`` starts it pinned like the scaler (``taskset -c 0``) and drives it with the
same ghz load, so the scaler's throughput can be compared with what grpc.aio itself allows on
this machine in the same run. Same server options as the scaler (``scaler.app``), no metrics, no
logging, no broker: every RPC answers a response built once at startup. Stops on SIGTERM/SIGINT.

``--work`` adds one piece of the scaler's per-RPC work to GetMetrics (``timeout``: an
``asyncio.timeout`` block; ``metadata``: ``frozenset`` of the metadata map's items), to measure
what it costs inside a loaded gRPC server rather than in a microbenchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc

from scaler.app import GRPC_SERVER_OPTIONS
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]

_SPEC = pb.GetMetricSpecResponse(
    metricSpecs=[pb.MetricSpec(metricName="noop", targetSize=5, targetSizeFloat=5.0)]
)
_METRICS = pb.GetMetricsResponse(
    metricValues=[pb.MetricValue(metricName="noop", metricValue=0, metricValueFloat=0.0)]
)
_ACTIVE = pb.IsActiveResponse(result=False)


class NoopServicer(pb_grpc.ExternalScalerServicer):
    """Every unary RPC returns a constant; StreamIsActive sends one ``false`` and idles."""

    def __init__(self, work: str = "none") -> None:
        self._work = work

    async def GetMetricSpec(self, request: pb.ScaledObjectRef, context: Context) -> Any:
        return _SPEC

    async def GetMetrics(self, request: pb.GetMetricsRequest, context: Context) -> Any:
        if self._work == "timeout":
            # what the scaler does around a cache hit (the block never awaits)
            async with asyncio.timeout(2.05):  # noqa: ASYNC100
                pass
        elif self._work == "metadata":
            frozenset(request.scaledObjectRef.scalerMetadata.items())
        return _METRICS

    async def IsActive(self, request: pb.ScaledObjectRef, context: Context) -> Any:
        return _ACTIVE

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.IsActiveResponse]:
        yield _ACTIVE
        await asyncio.Event().wait()

    async def StreamMetricSpec(
        self, request: pb.ScaledObjectRef, context: Context
    ) -> AsyncIterator[pb.GetMetricSpecResponse]:
        yield _SPEC
        await asyncio.Event().wait()


async def serve(port: int, bind_address: str, work: str = "none") -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
    pb_grpc.add_ExternalScalerServicer_to_server(NoopServicer(work), server)
    server.add_insecure_port(f"{bind_address}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--bind-address", default="127.0.0.1")
    parser.add_argument("--work", choices=("none", "timeout", "metadata"), default="none")
    args = parser.parse_args()
    asyncio.run(serve(args.grpc_port, args.bind_address, args.work))


if __name__ == "__main__":
    main()
