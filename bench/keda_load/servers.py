"""The server under measurement: the scaler or the no-op ceiling, one fresh process each time.

Pinned to the server core; its CPU time and memory come from /proc, the scaler's own counters
from its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.harness.ports import free_port
from bench.harness.processes import ChildProcess, pinned
from bench.harness.procfs import memory_mb, process_cpu_ticks
from bench.harness.prometheus import Samples, scrape
from bench.harness.scaler_process import serve_argv
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

#: seconds a server has to start serving
START_TIMEOUT = 30.0


class Server:
    """The scaler (``kind="scaler"``) or the no-op ceiling (``kind="noop"``), pinned to ``cpu``.

    :param mode: ``normal``, ``naive`` (``--naive true``) or, for the no-op server, ``noop``
    """

    def __init__(self, kind: str, mode: str, logs: Path, cpu: int | None) -> None:
        self.kind = kind
        self.mode = mode
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.log = logs / f"{kind}-{mode}-{self.grpc_port}.log"
        self.cpu = cpu
        self.child: ChildProcess | None = None
        self.channel: grpc.aio.Channel | None = None
        self.http = httpx.AsyncClient(timeout=10.0)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def argv(self) -> list[str]:
        if self.kind == "noop":
            return [
                sys.executable,
                "-m",
                "bench.harness.noop_server",
                "--grpc-port",
                str(self.grpc_port),
            ]
        options = ["--log-level", "WARNING", "--grace-period", "1"]
        if self.mode == "naive":
            options += ["--naive", "true"]
        return serve_argv(self.grpc_port, self.metrics_port, *options)

    async def start(self) -> None:
        """Start the process and wait until its gRPC port accepts a channel."""
        self.child = await ChildProcess.start(self.kind, pinned(self.argv(), self.cpu), self.log)
        self.channel = grpc.aio.insecure_channel(self.target)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.check_alive()
            try:
                # the no-op server has no health service: a ready channel is the common signal
                await asyncio.wait_for(self.channel.channel_ready(), 0.5)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.kind} ({self.mode}) not serving after {START_TIMEOUT:g} s:\n"
                        f"{self.tail()}"
                    ) from None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    @property
    def stub(self) -> Any:
        assert self.channel is not None
        return pb_grpc.ExternalScalerStub(self.channel)

    def check_alive(self) -> None:
        """Raise if the process has exited (with the end of its log)."""
        if self.child is not None and not self.child.alive:
            raise RuntimeError(
                f"{self.kind} ({self.mode}) exited with status {self.child.returncode}:\n"
                f"{self.tail()}"
            )

    def cpu_ticks(self) -> int:
        return process_cpu_ticks(self.pid)

    def memory(self) -> dict[str, float]:
        return memory_mb(self.pid)

    async def metrics(self) -> Samples | None:
        """The scaler's Prometheus samples now (None for the no-op server, which has none)."""
        if self.kind != "scaler":
            return None
        return await scrape(self.http, f"http://127.0.0.1:{self.metrics_port}/metrics")

    def tail(self) -> str:
        return self.child.tail() if self.child is not None else ""

    async def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 15 s, 5 s in naive mode); the exit status."""
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        await self.http.aclose()
        if self.child is None:
            return None
        return await self.child.stop(5.0 if self.mode == "naive" else 15.0)
