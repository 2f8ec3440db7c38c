"""Many keys per trigger on a Redis Cluster and through Sentinel: a glob is resolved with SCAN on
every master (the union of their keys), and the keys of one trigger are read with one script call
per master, however many masters they are spread over; more matches than ``maxKeys`` over all
masters is FAILED_PRECONDITION."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from scaler.backends.redis import RedisClusterBackend
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.redis_sentinel_faults import sentinel_master
from tests.integration.redis_topology_fixtures import Address

pytestmark = pytest.mark.integration

#: attempts at a count of script calls on the shared Cluster: other tests' calls only add to it,
#: so one exact attempt proves the count
ATTEMPTS = 5


@pytest.fixture
async def cluster_prefix(cluster: RedisCluster) -> AsyncIterator[str]:
    """A fresh key prefix on the Cluster; every key under it is deleted after the test."""
    value = f"kqs-many-{uuid.uuid4().hex[:10]}"
    yield value
    made = []
    for node in cluster.get_primaries():
        cursor = 0
        while True:
            # a Cluster's SCAN answers the cursor by node name
            cursors, keys = await cluster.scan(
                cursor, match=f"{value}*", count=1000, target_nodes=node
            )
            made += keys
            cursor = next(iter(cursors.values()))  # type: ignore[attr-defined]
            if not cursor:
                break
    pipe = cluster.pipeline()
    for key in made:
        pipe.delete(key)
    await pipe.execute()


async def _script_calls(cluster: RedisCluster) -> dict[str, int]:
    calls = {}
    for node in cluster.get_primaries():
        stats = await cluster.info("commandstats", target_nodes=node)
        calls[node.name] = sum(
            int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in ("evalsha", "eval")
        )
    return calls


def _cluster_metadata(seeds: str, pattern: str, **extra: str) -> dict[str, str]:
    return {"backend": "redis-cluster", "addresses": seeds, "listName": pattern, **extra}


async def test_200_keys_on_every_master_are_summed_in_one_call_per_master(
    cluster: RedisCluster, cluster_seeds: str, cluster_prefix: str
) -> None:
    keys = {f"{cluster_prefix}:{i}:wait": 1 + i % 5 for i in range(200)}
    for key, length in keys.items():
        await cluster.rpush(key, *range(length))
    owners = {cluster.get_node_from_key(k).name for k in keys}  # type: ignore[union-attr]
    assert len(owners) == 3
    backend = RedisClusterBackend(timeout=2.0)
    trigger = backend.parse(
        _cluster_metadata(cluster_seeds, f"{cluster_prefix}:*:wait", useGlob="true")
    )
    client = backend.connect(trigger.connection)
    try:
        # the first read resolves the glob on every master and loads the script on each
        first = await client.measure(trigger.resource)
        expected = sum([await cluster.llen(k) for k in keys])
        assert first.value == expected
        assert first.facts["keys"] == 200
        assert {item["key"]: item["value"] for item in first.items} == keys
        deltas = []
        for _ in range(ATTEMPTS):
            before = await _script_calls(cluster)
            results, requests = await client.measure_many([trigger.resource])
            delta = await _script_calls(cluster)
            deltas.append({name: delta[name] - before[name] for name in delta})
            if deltas[-1] == dict.fromkeys(before, 1):
                break
        assert requests == 3  # three script calls, no SCAN: the glob is kept
        assert deltas[-1] == dict.fromkeys(before, 1), deltas
        outcome = results[trigger.resource]
        assert not isinstance(outcome, BaseException)
        assert outcome.value == expected
    finally:
        await client.aclose()


async def test_a_glob_over_1500_keys_of_three_masters_is_failed_precondition(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_prefix: str
) -> None:
    pipe = cluster.pipeline()
    for i in range(1500):
        pipe.rpush(f"{cluster_prefix}:{i}", "x")
    await pipe.execute()
    metadata = _cluster_metadata(cluster_seeds, f"{cluster_prefix}:*", useGlob="true")
    running = await serve()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata)))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "more than maxKeys (1000)" in (err.value.details() or "")
    request = pb.GetMetricsRequest(scaledObjectRef=ref({**metadata, "maxKeys": "1500"}))
    [value] = (await running.stub.GetMetrics(request)).metricValues
    assert value.metricValueFloat == 1500  # the union of the three masters' keys


async def test_a_glob_over_cluster_streams_sums_pending_entries(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_prefix: str
) -> None:
    for i in range(6):
        stream = f"{cluster_prefix}:s{i}"
        await cluster.xgroup_create(stream, "workers", id="0", mkstream=True)
        for n in range(3):
            await cluster.xadd(stream, {"n": n})
        await cluster.xreadgroup("workers", "c1", {stream: ">"}, count=1 + i % 3)
    metadata = {
        "backend": "redis-cluster-streams",
        "addresses": cluster_seeds,
        "stream": f"{cluster_prefix}:s*",
        "useGlob": "true",
        "consumerGroup": "workers",
    }
    running = await serve()
    [value] = (
        await running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata)))
    ).metricValues
    assert value.metricValueFloat == sum(1 + i % 3 for i in range(6))


async def test_a_glob_through_sentinel_scans_the_master(
    serve, sentinels: list[Address], sentinel_master_name: str
) -> None:
    host, port = sentinel_master(sentinels, sentinel_master_name)
    master = redis.Redis(host=host, port=port)
    prefix = f"kqs-many-{uuid.uuid4().hex[:10]}"
    keys = [f"{prefix}:{i}" for i in range(30)]
    try:
        for i, key in enumerate(keys):
            master.rpush(key, *range(i + 1))
        metadata = {
            "backend": "redis-sentinel",
            "addresses": ",".join(f"{h}:{p}" for h, p in sentinels),
            "sentinelMaster": sentinel_master_name,
            "listName": f"{prefix}:*",
            "useGlob": "true",
            "operation": "max",
        }
        running = await serve()
        [value] = (
            await running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata)))
        ).metricValues
        assert value.metricValueFloat == 30
    finally:
        master.delete(*keys)
