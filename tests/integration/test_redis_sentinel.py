"""``backend: redis-sentinel`` against a real Sentinel group (a master, a replica, three
sentinels): the master found through the sentinels, and followed across a failover without a
restart, with errors during it and never a 0."""

from __future__ import annotations

import asyncio

import pytest
import redis

from scaler.backends.redis import RedisList, RedisSentinelBackend
from scaler.errors import BackendError, MetadataError
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.redis_sentinel_faults import sentinel_failover, sentinel_master

pytestmark = pytest.mark.integration

Address = tuple[str, int]


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
    serve, sentinels: list[Address], sentinel_master_name: str, sentinel_key: str
) -> None:
    master = _master(sentinels, sentinel_master_name)
    master.rpush(sentinel_key, *range(9))
    running = await serve()
    trigger = metadata(sentinels, sentinel_master_name, sentinel_key)
    [spec] = (await running.stub.GetMetricSpec(ref(trigger))).metricSpecs
    assert (spec.metricName, spec.targetSize) == (f"redis-{sentinel_key}", 5)
    request = pb.GetMetricsRequest(scaledObjectRef=ref(trigger), metricName=spec.metricName)
    [value] = (await running.stub.GetMetrics(request)).metricValues
    assert value.metricValueFloat == master.llen(sentinel_key) == 9
    assert (await running.stub.IsActive(ref(trigger))).result is True


def test_sentinel_master_is_required(sentinels: list[Address]) -> None:
    raw = metadata(sentinels, "", "jobs")
    del raw["sentinelMaster"]
    with pytest.raises(MetadataError, match="sentinelMaster"):
        RedisSentinelBackend(timeout=1.0).parse(raw)


async def test_a_failover_gives_errors_never_zero_then_the_new_masters_values(
    sentinels: list[Address], sentinel_master_name: str, sentinel_key: str
) -> None:
    master = _master(sentinels, sentinel_master_name)
    master.rpush(sentinel_key, *range(6))
    # replication is asynchronous: the replica that takes over must have the list already, or
    # Redis itself would have lost it
    assert master.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
    backend = RedisSentinelBackend(timeout=1.0)
    client = backend.connect(
        backend.parse(metadata(sentinels, sentinel_master_name, sentinel_key)).connection
    )
    seen: list[float | str] = []
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set():
            try:
                seen.append((await client.measure(RedisList(sentinel_key))).value)
            except BackendError as err:
                seen.append(type(err).__name__)
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll())
    try:
        await asyncio.sleep(0.2)
        old, new = await asyncio.to_thread(sentinel_failover, sentinels, sentinel_master_name)
        assert old != new
        # the new master takes a write the old one (now a replica) could not have taken
        redis.Redis(host=new[0], port=new[1]).rpush(sentinel_key, "after")
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
