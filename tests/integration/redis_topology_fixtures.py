"""Redis Cluster and Sentinel fixtures for tests against the real groups; imported by
conftest.py.

``scripts/brokers.sh start redis-cluster redis-sentinel`` runs them on loopback and
``scripts/brokers.sh env`` prints the variables read here: ``SCALER_TEST_REDIS_CLUSTER_NODES``,
``SCALER_TEST_REDIS_SENTINELS`` and ``SCALER_TEST_REDIS_SENTINEL_MASTER``. Without them a test is
skipped, or fails when ``SCALER_REQUIRE_INTEGRATION=1``. Keys handed out are deleted after the
test; faults (a killed node, a failover) are ``redis_topology``'s.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from tests.integration.conftest import unavailable
from tests.integration.redis_topology import sentinel_master

Address = tuple[str, int]

__all__ = [
    "Address",
    "cluster",
    "cluster_keys",
    "cluster_seeds",
    "sentinel_key",
    "sentinel_master_name",
    "sentinels",
]


@pytest.fixture(scope="session")
def cluster_seeds() -> str:
    """Every node of the test Cluster, as ``addresses`` takes them."""
    nodes = os.environ.get("SCALER_TEST_REDIS_CLUSTER_NODES")
    if not nodes:
        unavailable("SCALER_TEST_REDIS_CLUSTER_NODES is not set (scripts/brokers.sh env)")
    return nodes


@pytest.fixture
async def cluster(cluster_seeds: str) -> AsyncIterator[RedisCluster]:
    """A redis-py Cluster client of the test's own, slot map loaded."""
    host, _, port = cluster_seeds.split(",")[0].rpartition(":")
    client = RedisCluster(startup_nodes=[ClusterNode(host, int(port))])
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


@pytest.fixture(scope="session")
def sentinels() -> list[Address]:
    """The sentinels of the test group."""
    value = os.environ.get("SCALER_TEST_REDIS_SENTINELS")
    if not value:
        unavailable("SCALER_TEST_REDIS_SENTINELS is not set (scripts/brokers.sh env)")
    found = []
    for item in value.split(","):
        host, _, port = item.rpartition(":")
        found.append((host, int(port)))
    return found


@pytest.fixture(scope="session")
def sentinel_master_name() -> str:
    return os.environ.get("SCALER_TEST_REDIS_SENTINEL_MASTER", "kqs-master")


@pytest.fixture
def sentinel_key(sentinels: list[Address], sentinel_master_name: str) -> Iterator[str]:
    """A new key name, deleted from whichever node is master after the test."""
    key = f"kqs-sentinel-{uuid.uuid4().hex[:10]}"
    yield key
    host, port = sentinel_master(sentinels, sentinel_master_name)
    redis.Redis(host=host, port=port).delete(key)
