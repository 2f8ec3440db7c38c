"""Fixtures for tests against a real Redis (see README.md in this folder).

The shared server comes from ``SCALER_TEST_REDIS_URL`` (``make brokers`` starts one); tests that
need to stop and restart a server get their own ``redis-server`` process with ``own_redis``. The
shared Redis Cluster and Sentinel group have theirs in ``redis_topology_fixtures.py``; the other
brokers' are in their own modules too, registered at the end of this file.
Without the broker a test is skipped, or fails when ``SCALER_REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn, Protocol
from urllib.parse import unquote, urlsplit

import pytest
import redis.asyncio as aioredis

from bench.harness.ports import free_port
from bench.harness.redis_server import RedisServer
from bench.harness.redis_server import redis_server_binary as harness_redis_server_binary

REQUIRE_ENV = "SCALER_REQUIRE_INTEGRATION"
REDIS_URL_ENV = "SCALER_TEST_REDIS_URL"


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


class OwnRedis(RedisServer):
    """The harness's own ``redis-server`` for one test, with trigger metadata pointing at it."""

    def metadata(self, list_name: str, **extra: str) -> dict[str, str]:
        """KEDA-style trigger metadata pointing at this server."""
        return metadata_for(self.url, list_name, **extra)


@pytest.fixture
def redis_server_binary() -> str:
    binary = harness_redis_server_binary()
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
from tests.integration.redis_topology_fixtures import *  # noqa: E402, F403
