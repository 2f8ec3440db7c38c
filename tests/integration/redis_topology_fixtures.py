"""Redis Cluster and Sentinel fixtures for tests against the real groups; imported by
conftest.py.

``scripts/brokers.sh start redis-cluster redis-sentinel`` runs them on loopback and
``scripts/brokers.sh env`` prints the variables read here: ``SCALER_TEST_REDIS_CLUSTER_NODES``,
``SCALER_TEST_REDIS_SENTINELS``, ``SCALER_TEST_REDIS_SENTINEL_MASTER`` and
``SCALER_TEST_REDIS_SENTINEL_NODES``. Without them a test is skipped, or fails when
``SCALER_REQUIRE_INTEGRATION=1``. Keys handed out are deleted after the test; faults (a killed
node, a failover) and waits are ``redis_topology``'s. Which node is master changes when a test
kills one or fails the group over: ask the cluster or the sentinels, never assume it.

Each variable is read once (``redis_cluster_nodes``, ``redis_sentinels``,
``redis_sentinel_master``, ``redis_sentinel_nodes``); ``cluster_seeds``, ``sentinels`` and
``sentinel_master_name`` are the same values in the shapes the backend tests use.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.cluster import ClusterNode as SyncClusterNode
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.sentinel import Sentinel

from tests.integration.conftest import KeyFactory, unavailable
from tests.integration.redis_sentinel_faults import sentinel_master
from tests.integration.redis_topology import (
    CLUSTER_NODES_ENV,
    SENTINEL_MASTER_ENV,
    SENTINEL_NODES_ENV,
    SENTINELS_ENV,
    Address,
    parse_addresses,
)

__all__ = [
    "Address",
    "cluster",
    "cluster_keys",
    "cluster_seeds",
    "redis_cluster_client",
    "redis_cluster_key",
    "redis_cluster_nodes",
    "redis_sentinel_client",
    "redis_sentinel_key",
    "redis_sentinel_master",
    "redis_sentinel_nodes",
    "redis_sentinels",
    "sentinel_client",
    "sentinel_key",
    "sentinel_master_name",
    "sentinels",
]


def _addresses_from(name: str) -> list[Address]:
    value = os.environ.get(name, "")
    if not value:
        unavailable(f"{name} is not set; run `make brokers` then `eval $(scripts/brokers.sh env)`")
    return parse_addresses(value)


# --- Cluster --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster_nodes() -> list[Address]:
    """The six nodes of the test Cluster as ``(host, port)``, from
    ``SCALER_TEST_REDIS_CLUSTER_NODES``."""
    return _addresses_from(CLUSTER_NODES_ENV)


@pytest.fixture(scope="session")
def cluster_seeds(redis_cluster_nodes: list[Address]) -> str:
    """Every node of the test Cluster, as ``addresses`` takes them."""
    return ",".join(f"{host}:{port}" for host, port in redis_cluster_nodes)


@pytest.fixture
def redis_cluster_client(redis_cluster_nodes: list[Address]) -> Iterator[SyncRedisCluster]:
    """A synchronous redis-py ``RedisCluster`` of the test's own (one per test: a test that
    kills a master leaves no stale slot map behind), closed after it."""
    client = SyncRedisCluster(
        startup_nodes=[
            SyncClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in redis_cluster_nodes
        ],
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_cluster_key(redis_cluster_client: SyncRedisCluster) -> Iterator[KeyFactory]:
    """``make(prefix)``: a fresh key name; every key handed out is deleted from the cluster after
    the test (one DEL per key: they live on different masters)."""
    handed_out: list[str] = []

    def make(prefix: str = "kqs-cluster") -> str:
        handed_out.append(f"{prefix}-{uuid.uuid4().hex}")
        return handed_out[-1]

    yield make
    for key in handed_out:
        redis_cluster_client.delete(key)


@pytest.fixture
async def cluster(redis_cluster_nodes: list[Address]) -> AsyncIterator[RedisCluster]:
    """An asyncio redis-py Cluster client of the test's own, slot map loaded."""
    host, port = redis_cluster_nodes[0]
    client = RedisCluster(startup_nodes=[ClusterNode(host, port)])
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture
async def cluster_keys(cluster: RedisCluster) -> AsyncIterator[Callable[[str], str]]:
    """``cluster_keys(prefix)``: a new key name, deleted after the test."""
    made: list[str] = []

    def make(prefix: str = "kqs-cluster") -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for key in made:
        await cluster.delete(key)


# --- Sentinel -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_sentinels() -> list[Address]:
    """The three sentinels of the test group, from ``SCALER_TEST_REDIS_SENTINELS``."""
    return _addresses_from(SENTINELS_ENV)


@pytest.fixture(scope="session")
def redis_sentinel_master() -> str:
    """The master name the sentinels monitor, from ``SCALER_TEST_REDIS_SENTINEL_MASTER``."""
    name = os.environ.get(SENTINEL_MASTER_ENV, "")
    if not name:
        unavailable(f"{SENTINEL_MASTER_ENV} is not set; run `eval $(scripts/brokers.sh env)`")
    return name


@pytest.fixture(scope="session")
def redis_sentinel_nodes() -> list[Address]:
    """The group's two data nodes, master and replica in either role, from
    ``SCALER_TEST_REDIS_SENTINEL_NODES``."""
    return _addresses_from(SENTINEL_NODES_ENV)


@pytest.fixture(scope="session")
def sentinels(redis_sentinels: list[Address]) -> list[Address]:
    """The sentinels of the test group (``redis_sentinels``)."""
    return redis_sentinels


@pytest.fixture(scope="session")
def sentinel_master_name(redis_sentinel_master: str) -> str:
    """The monitored master name (``redis_sentinel_master``)."""
    return redis_sentinel_master


def sentinel_client(sentinels: list[Address], name: str) -> tuple[Sentinel, redis.Redis]:
    """A ``redis.sentinel.Sentinel`` over ``sentinels`` and its ``master_for(name)`` client, which
    asks the sentinels for the master on each new connection (strings decoded); close both."""
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        sentinels, socket_timeout=2, socket_connect_timeout=2
    )
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        name, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )
    return sentinel, master


@pytest.fixture
def redis_sentinel_client(
    redis_sentinels: list[Address], redis_sentinel_master: str
) -> Iterator[redis.Redis]:
    """A client of the group's current master through the sentinels (``master_for``), closed
    after the test."""
    sentinel, master = sentinel_client(redis_sentinels, redis_sentinel_master)
    try:
        yield master
    finally:
        master.close()
        sentinel.close()


@pytest.fixture
def redis_sentinel_key(
    redis_sentinels: list[Address], redis_sentinel_master: str
) -> Iterator[KeyFactory]:
    """``make(prefix)``: a fresh key name; every key handed out is deleted after the test, on
    whichever node is master then (asked afresh: the test may have failed the group over)."""
    handed_out: list[str] = []

    def make(prefix: str = "kqs-sentinel") -> str:
        handed_out.append(f"{prefix}-{uuid.uuid4().hex}")
        return handed_out[-1]

    yield make
    if handed_out:
        sentinel, master = sentinel_client(redis_sentinels, redis_sentinel_master)
        try:
            master.delete(*handed_out)
        finally:
            master.close()
            sentinel.close()


@pytest.fixture
def sentinel_key(sentinels: list[Address], sentinel_master_name: str) -> Iterator[str]:
    """A new key name, deleted from whichever node is master after the test."""
    key = f"kqs-sentinel-{uuid.uuid4().hex[:10]}"
    yield key
    host, port = sentinel_master(sentinels, sentinel_master_name)
    with redis.Redis(host=host, port=port, socket_timeout=2) as client:
        client.delete(key)
