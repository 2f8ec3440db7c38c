"""A ``redis-server`` of one's own on a loopback port: started, stopped, restarted on that port.

Tests use it for a server they may stop or kill; the benchmark for a Redis whose command
statistics count only the scaler and itself. ``durable`` fsyncs every write to the append-only
file, so the data survives SIGKILL.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bench.harness.processes import pinned

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_NO_RETRY = Retry(NoBackoff(), 0)


def redis_server_binary() -> str | None:
    """The ``redis-server`` on PATH (``scripts/brokers.sh start`` installs it), or None."""
    return shutil.which("redis-server")


class RedisServer:
    """A ``redis-server`` process on a fixed loopback port, stoppable and restartable.

    :param cpu: the core to pin it to (None: not pinned)
    """

    def __init__(
        self, binary: str, port: int, workdir: Path, durable: bool = False, cpu: int | None = None
    ) -> None:
        self.binary = binary
        self.durable = durable
        self.port = port
        self.workdir = workdir
        self.cpu = cpu
        self.logfile = workdir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """Pid of the current (or last) server process."""
        if self._process is None:
            raise RuntimeError("own redis-server was never started")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self) -> None:
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            # durable: every write fsynced to the append-only file, so data survives SIGKILL
            "appendonly": "yes" if self.durable else "no",
            "appendfsync": "always",
            "daemonize": "no",
            "dir": str(self.workdir),
            "logfile": str(self.logfile),
        }
        argv = [self.binary]
        for name, value in options.items():
            argv += [f"--{name}", value]
        self._process = subprocess.Popen(
            pinned(argv, self.cpu),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def _ping(self) -> bool:
        client = aioredis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, retry=_NO_RETRY
        )
        try:
            return bool(await client.ping())
        except (rexc.ConnectionError, rexc.TimeoutError, rexc.BusyLoadingError):
            return False
        finally:
            await client.aclose()

    async def start(self) -> None:
        """Start the server (again) on the same port and wait until it answers PING."""
        if self.running:
            raise RuntimeError(f"own redis-server already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._spawn()
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {self._process.returncode}:\n"
                    f"{self.log_tail()}"
                )
            if await self._ping():
                return
            await asyncio.sleep(0.05)
        self.terminate()
        raise RuntimeError(
            f"redis-server on port {self.port} did not answer PING within {START_TIMEOUT} s:\n"
            f"{self.log_tail()}"
        )

    async def stop(self) -> None:
        """SIGTERM the server and wait for it to exit (SIGKILL if it takes too long)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while process.poll() is None:
            if time.monotonic() >= deadline:
                process.kill()
                deadline = time.monotonic() + STOP_TIMEOUT
            await asyncio.sleep(0.02)

    def terminate(self) -> None:
        """Synchronous stop for teardown: SIGTERM, wait, SIGKILL if needed."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
