"""``keda-queue-scaler serve`` as a child process: its command line, readiness, a test context.

The benchmark and the tests start the scaler the same way: ``python -m scaler serve`` on
loopback, settings as flags or ``SCALER_*`` variables, its output in a log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.harness.processes import ChildProcess


def serve_argv(grpc_port: int, metrics_port: int = 0, *options: str) -> list[str]:
    """The command line serving gRPC on ``grpc_port`` and metrics on ``metrics_port`` (0: any),
    bound to loopback, followed by ``options`` (more ``serve`` flags)."""
    return [
        sys.executable,
        "-m",
        "scaler",
        "serve",
        "--grpc-port",
        str(grpc_port),
        "--metrics-port",
        str(metrics_port),
        "--bind-address",
        "127.0.0.1",
        *options,
    ]


async def wait_serving(channel: grpc.aio.Channel, seconds: float = 15.0) -> None:
    """Wait until the server's gRPC health says SERVING.

    :raises TimeoutError: not SERVING within ``seconds``
    """
    health = health_pb2_grpc.HealthStub(channel)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"scaler did not become SERVING within {seconds:g} s")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def scaler_process(
    log_path: Path, port: int, metrics_port: int = 0, **settings: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``keda-queue-scaler serve`` on ``port`` (metrics on ``metrics_port``, 0: any) with
    ``SCALER_*`` settings from ``settings``; killed at the end if still running."""
    child = await ChildProcess.start(
        "scaler", serve_argv(port, metrics_port), log_path, env={**os.environ, **settings}
    )
    try:
        yield child.process
    finally:
        await child.kill()
