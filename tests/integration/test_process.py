"""The real ``keda-queue-scaler serve`` process: health, a stream, SIGTERM, exit status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.conftest import ref
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_serving(channel: grpc.aio.Channel, seconds: float = 15.0) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        assert asyncio.get_running_loop().time() < deadline, "scaler did not become SERVING"
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def scaler_process(
    log_path: Path, port: int, metrics_port: int = 0, **settings: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``keda-queue-scaler serve`` on ``port`` (metrics on ``metrics_port``, 0: any) with
    SCALER_* settings; killed if still running."""
    env = {**os.environ, "SCALER_GRPC_PORT": str(port), **settings}
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "scaler",
            "serve",
            "--metrics-port",
            str(metrics_port),
            "--bind-address",
            "127.0.0.1",
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_sigterm_ends_open_stream_with_ok_and_exits_zero(
    tmp_path: Path, unique_key, redis_metadata
) -> None:
    port = _free_port()
    log_path = tmp_path / "scaler.log"
    async with (
        scaler_process(log_path, port, SCALER_LOG_FORMAT="json") as process,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        await _wait_serving(channel)
        stub = pb_grpc.ExternalScalerStub(channel)
        stream = StreamReader(stub.StreamIsActive(ref(redis_metadata(unique_key("sigterm")))))
        assert await stream.next() is False
        process.send_signal(signal.SIGTERM)
        assert await stream.status(timeout=10) == grpc.StatusCode.OK
        assert await asyncio.wait_for(process.wait(), 15) == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [entry["message"] for entry in lines]
    order = [
        "shutting down: health NOT_SERVING",
        "ending open streams with status OK",
        "closing backend clients",
        "stopped",
    ]
    positions = [next(i for i, m in enumerate(messages) if m.startswith(step)) for step in order]
    assert positions == sorted(positions), messages


async def test_version_command() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scaler", "version", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out.decode().startswith("keda-queue-scaler ")


async def test_invalid_setting_refuses_to_start() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scaler",
        "serve",
        "--cache-ttl",
        "soon",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SCALER_BACKEND_TIMEOUT": "-1"},
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"--cache-ttl: 'soon'" in err
    assert b"SCALER_BACKEND_TIMEOUT: '-1'" in err
