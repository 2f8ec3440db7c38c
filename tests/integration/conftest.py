"""Fixtures for tests against a real Redis (see README.md in this folder).

The shared server comes from ``SCALER_TEST_REDIS_URL`` (``make brokers`` starts one); tests that
need to stop and restart a server get their own ``redis-server`` process with ``own_redis``.
Without the broker a test is skipped, or fails when ``SCALER_REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn, Protocol
from urllib.parse import unquote, urlsplit

import pytest
import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

REQUIRE_ENV = "SCALER_REQUIRE_INTEGRATION"
REDIS_URL_ENV = "SCALER_TEST_REDIS_URL"

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_NO_RETRY = Retry(NoBackoff(), 0)


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``SCALER_REQUIRE_INTEGRATION=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)")
    pytest.skip(reason)


# --- the shared brokers' own processes ---------------------------------------------------------

#: where scripts/brokers.sh keeps each broker's state, pidfile and log
RUN_DIR = Path(__file__).resolve().parents[2] / ".run"
_PIDFILES = {
    "kafka": RUN_DIR / "kafka" / "kafka.pid",
    "rabbitmq": RUN_DIR / "rabbitmq" / "node.pid",
}


def broker_pid(broker: str) -> int:
    """Pid of the shared ``kafka`` or ``rabbitmq`` process itself (the JVM, the Erlang node)."""
    pidfile = _PIDFILES[broker]
    if not pidfile.exists():
        pytest.fail(f"{pidfile} missing: start the brokers with scripts/brokers.sh")
    return int(pidfile.read_text().split()[0])


# --- the shared Redis -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the shared test Redis, from ``SCALER_TEST_REDIS_URL``."""
    url = os.environ.get(REDIS_URL_ENV, "")
    if not url:
        unavailable(
            f"{REDIS_URL_ENV} is not set; run `make brokers` then `eval $(scripts/brokers.sh env)`"
        )
    return url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the shared Redis, closed after the test."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class KeyFactory(Protocol):
    def __call__(self, prefix: str = "kqs-test") -> str: ...


@pytest.fixture
async def unique_key(redis_client: aioredis.Redis) -> AsyncIterator[KeyFactory]:
    """``make(prefix)`` returns a fresh key name; every key handed out is deleted after the test."""
    handed_out: list[str] = []

    def make(prefix: str = "kqs-test") -> str:
        key = f"{prefix}-{uuid.uuid4().hex}"
        handed_out.append(key)
        return key

    yield make
    if handed_out:
        await redis_client.delete(*handed_out)


class MetadataFactory(Protocol):
    def __call__(self, list_name: str, **extra: str) -> dict[str, str]: ...


def metadata_for(url: str, list_name: str, **extra: str) -> dict[str, str]:
    """KEDA-style ``redis`` trigger metadata for the server at ``url`` (a ``redis://`` URL)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    database = parts.path.lstrip("/") or "0"
    metadata = {
        "backend": "redis",
        "address": f"{host}:{parts.port or 6379}",
        "databaseIndex": database,
        "listName": list_name,
    }
    if parts.username:
        metadata["username"] = unquote(parts.username)
    if parts.password:
        metadata["password"] = unquote(parts.password)
    if parts.scheme == "rediss":
        metadata["enableTLS"] = "true"
    metadata.update(extra)
    return metadata


@pytest.fixture
def redis_metadata(redis_url: str) -> MetadataFactory:
    """``redis_metadata(list_name, **extra)``: trigger metadata pointing at the shared Redis."""

    def make(list_name: str, **extra: str) -> dict[str, str]:
        return metadata_for(redis_url, list_name, **extra)

    return make


# --- a Redis server owned by one test ---------------------------------------------------------


def free_port() -> int:
    """A TCP port free on loopback right now (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnRedis:
    """A ``redis-server`` process of one test, on a fixed loopback port, stoppable and restartable."""

    def __init__(self, binary: str, port: int, workdir: Path, durable: bool = False) -> None:
        self.binary = binary
        self.durable = durable
        self.port = port
        self.workdir = workdir
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

    def metadata(self, list_name: str, **extra: str) -> dict[str, str]:
        """KEDA-style trigger metadata pointing at this server."""
        return metadata_for(self.url, list_name, **extra)

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
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _log_tail(self, lines: int = 20) -> str:
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
        self._spawn()
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {self._process.returncode}:\n"
                    f"{self._log_tail()}"
                )
            if await self._ping():
                return
            await asyncio.sleep(0.05)
        self.terminate()
        raise RuntimeError(
            f"redis-server on port {self.port} did not answer PING within {_START_TIMEOUT} s:\n"
            f"{self._log_tail()}"
        )

    async def stop(self) -> None:
        """SIGTERM the server and wait for it to exit (SIGKILL if it takes too long)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT
        while process.poll() is None:
            if time.monotonic() >= deadline:
                process.kill()
                deadline = time.monotonic() + _STOP_TIMEOUT
            await asyncio.sleep(0.02)

    def terminate(self) -> None:
        """Synchronous stop for teardown: SIGTERM, wait, SIGKILL if needed."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not on PATH; `scripts/brokers.sh start` installs it")
    return binary


@pytest.fixture
async def own_redis(redis_server_binary: str, tmp_path: Path) -> AsyncIterator[OwnRedis]:
    """A test-owned ``redis-server`` on a free loopback port; always terminated at teardown."""
    async with _started(OwnRedis(redis_server_binary, free_port(), tmp_path)) as server:
        yield server


@pytest.fixture
async def durable_redis(redis_server_binary: str, tmp_path: Path) -> AsyncIterator[OwnRedis]:
    """Like ``own_redis``, but every write is fsynced first: the data survives SIGKILL."""
    async with _started(OwnRedis(redis_server_binary, free_port(), tmp_path, True)) as server:
        yield server


@contextlib.asynccontextmanager
async def _started(server: OwnRedis) -> AsyncIterator[OwnRedis]:
    try:
        await server.start()
        yield server
    finally:
        server.terminate()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """``host:port`` of a listener whose backlog accepts connections nobody reads or answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    host, port = server.getsockname()
    yield f"{host}:{port}"
    server.close()


# Fixtures of the other brokers live in their own modules; importing them here registers them.
from tests.integration.kafka_fixtures import *  # noqa: E402, F403
from tests.integration.rabbitmq_fixtures import *  # noqa: E402, F403
