"""``backend: redis-sentinel`` against a real Sentinel group (a master, a replica, three
sentinels): the master found through the sentinels, and followed across a failover without a
restart, with errors during it and never a 0."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from scaler.backends.redis import RedisList, RedisSentinelBackend
from scaler.errors import BackendError, MetadataError
from scaler.proto import externalscaler_pb2 as pb
from scaler.values import host_port
from tests.conftest import ref
from tests.integration.conftest import unavailable
from tests.integration.redis_topology import sentinel_failover, sentinel_master

pytestmark = pytest.mark.integration

Address = tuple[str, int]


@pytest.fixture(scope="session")
def sentinels() -> list[Address]:
    value = os.environ.get("SCALER_TEST_REDIS_SENTINELS")
    if not value:
        unavailable("SCALER_TEST_REDIS_SENTINELS is not set (scripts/brokers.sh env)")
    found = [host_port(item) for item in value.split(",")]
    return [address for address in found if address is not None]


@pytest.fixture(scope="session")
def master_name() -> str:
    return os.environ.get("SCALER_TEST_REDIS_SENTINEL_MASTER", "kqs-master")


@pytest.fixture
def list_key(sentinels: list[Address], master_name: str) -> Iterator[str]:
    key = f"kqs-sentinel-{uuid.uuid4().hex[:10]}"
    yield key
    host, port = sentinel_master(sentinels, master_name)
    redis.Redis(host=host, port=port).delete(key)


def _master(sentinels: list[Address], name: str) -> redis.Redis:
    host, port = sentinel_master(sentinels, name)
    return redis.Redis(host=host, port=port, socket_timeout=2)


def _scaler_clients(address: Address) -> int:
    clients = redis.Redis(host=address[0], port=address[1]).client_list()
    return sum(1 for c in clients if c.get("name") == "keda-queue-scaler")


def metadata(sentinels: list[Address], master: str, key: str) -> dict[str, str]:
    return {
        "backend": "redis-sentinel",
        "addresses": ",".join(f"{h}:{p}" for h, p in sentinels),
        "sentinelMaster": master,
        "listName": key,
    }


async def test_the_master_the_sentinels_name_is_read_over_grpc(
    serve, sentinels: list[Address], master_name: str, list_key: str
) -> None:
    master = _master(sentinels, master_name)
    master.rpush(list_key, *range(9))
    running = await serve()
    trigger = metadata(sentinels, master_name, list_key)
    [spec] = (await running.stub.GetMetricSpec(ref(trigger))).metricSpecs
    assert (spec.metricName, spec.targetSize) == (f"redis-{list_key}", 5)
    request = pb.GetMetricsRequest(scaledObjectRef=ref(trigger), metricName=spec.metricName)
    [value] = (await running.stub.GetMetrics(request)).metricValues
    assert value.metricValueFloat == master.llen(list_key) == 9
    assert (await running.stub.IsActive(ref(trigger))).result is True


def test_sentinel_master_is_required(sentinels: list[Address]) -> None:
    raw = metadata(sentinels, "", "jobs")
    del raw["sentinelMaster"]
    with pytest.raises(MetadataError, match="sentinelMaster"):
        RedisSentinelBackend(timeout=1.0).parse(raw)


async def test_a_failover_gives_errors_never_zero_then_the_new_masters_values(
    sentinels: list[Address], master_name: str, list_key: str
) -> None:
    _master(sentinels, master_name).rpush(list_key, *range(6))
    backend = RedisSentinelBackend(timeout=1.0)
    client = backend.connect(backend.parse(metadata(sentinels, master_name, list_key)).connection)
    seen: list[float | str] = []
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set():
            try:
                seen.append((await client.measure(RedisList(list_key))).value)
            except BackendError as err:
                seen.append(type(err).__name__)
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll())
    try:
        await asyncio.sleep(0.2)
        old, new = await asyncio.to_thread(sentinel_failover, sentinels, master_name)
        assert old != new
        # the new master takes a write the old one (now a replica) could not have taken
        redis.Redis(host=new[0], port=new[1]).rpush(list_key, "after")
        deadline = asyncio.get_running_loop().time() + 5  # within a few backend timeouts
        while seen[-1] != 7:
            assert asyncio.get_running_loop().time() < deadline, seen[-20:]
            await asyncio.sleep(0.05)
        # read from the new master, not through replication on the old one
        assert _scaler_clients(new) >= 1
        assert _scaler_clients(old) == 0
    finally:
        stop.set()
        await poller
        await client.aclose()
    numbers = [v for v in seen if isinstance(v, float)]
    assert set(numbers) <= {6.0, 7.0}, seen  # never 0, never a made-up count
    assert all(v in ("BackendUnavailable", "BackendTimeout") for v in seen if isinstance(v, str))
