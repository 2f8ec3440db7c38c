"""The real ``keda-queue-scaler serve`` process: health, a stream, SIGTERM, exit status."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest

from bench.harness.ports import free_port
from bench.harness.scaler_process import scaler_process, wait_serving
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.conftest import ref
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


async def test_sigterm_ends_open_stream_with_ok_and_exits_zero(
    tmp_path: Path, unique_key, redis_metadata
) -> None:
    port = free_port()
    log_path = tmp_path / "scaler.log"
    async with (
        scaler_process(log_path, port, SCALER_LOG_FORMAT="json") as process,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        await wait_serving(channel)
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
