"""Shared work on a Redis Cluster and through Sentinel, as on a single Redis: concurrent polls of
one key cost one script call, and watchers batch every watched key of a connection (one call per
Cluster master per cycle), pushing activation when a list fills."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.redis_sentinel_faults import sentinel_master
from tests.integration.redis_topology_fixtures import Address
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


def _script_calls(stats: dict[str, dict[str, int]]) -> int:
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def _per_master(cluster: RedisCluster) -> dict[str, int]:
    calls = {}
    for node in cluster.get_primaries():
        calls[node.name] = _script_calls(await cluster.info("commandstats", target_nodes=node))
    return calls


def _cluster_trigger(seeds: str, key: str) -> dict[str, str]:
    return {"backend": "redis-cluster", "addresses": seeds, "listName": key}


def _sentinel_trigger(sentinels: list[Address], master: str, key: str) -> dict[str, str]:
    return {
        "backend": "redis-sentinel",
        "addresses": ",".join(f"{h}:{p}" for h, p in sentinels),
        "sentinelMaster": master,
        "listName": key,
    }


async def _poll_200(running, metadata: dict[str, str]) -> set[float]:
    replies = await asyncio.gather(
        *(
            running.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=ref(metadata, name=f"so-{i % 100}"))
            )
            for i in range(200)
        )
    )
    return {r.metricValues[0].metricValueFloat for r in replies}


async def test_cluster_polls_of_one_key_cost_one_call_on_its_master(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    key = cluster_keys()
    warm = f"{{{key}}}:warm"  # the same slot: the warm-up loads the script on the key's master
    await cluster.rpush(key, *range(33))
    running = await serve(cache_ttl=5.0)
    await running.stub.GetMetrics(  # opens the client, loads the slot map and the script
        pb.GetMetricsRequest(scaledObjectRef=ref(_cluster_trigger(cluster_seeds, warm)))
    )
    before = await _per_master(cluster)
    assert await _poll_200(running, _cluster_trigger(cluster_seeds, key)) == {33.0}
    after = await _per_master(cluster)
    owner = cluster.get_node_from_key(key)
    assert owner is not None
    delta = {name: after[name] - before[name] for name in after}
    assert delta == {name: int(name == owner.name) for name in after}


async def test_sentinel_polls_of_one_key_cost_one_call_on_the_master(
    serve, sentinels: list[Address], sentinel_master_name: str, sentinel_key: str
) -> None:
    host, port = sentinel_master(sentinels, sentinel_master_name)
    master = redis.Redis(host=host, port=port)
    master.rpush(sentinel_key, *range(21))
    metadata = _sentinel_trigger(sentinels, sentinel_master_name, sentinel_key)
    running = await serve(cache_ttl=5.0)
    await running.stub.GetMetrics(  # opens the client and loads the script first
        pb.GetMetricsRequest(scaledObjectRef=ref({**metadata, "listName": "kqs-warm"}))
    )
    before = _script_calls(master.info("commandstats"))
    assert await _poll_200(running, metadata) == {21.0}
    assert _script_calls(master.info("commandstats")) - before == 1


async def test_cluster_watchers_batch_one_call_per_master_per_cycle(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    keys = [cluster_keys("watched") for _ in range(12)]
    owners = {cluster.get_node_from_key(k).name for k in keys}  # type: ignore[union-attr]
    assert len(owners) == 3
    running = await serve(watch_intervals=(("redis-cluster", 0.025),), watch_max_requests=60.0)
    streams = {
        key: [
            StreamReader(
                running.stub.StreamIsActive(
                    ref(_cluster_trigger(cluster_seeds, key), name=f"so-{key}-{n}")
                )
            )
            for n in range(3)
        ]
        for key in keys
    }
    for readers in streams.values():
        for reader in readers:
            assert await reader.next() is False
    assert len(running.app.hub) == 12  # one watcher per list, not per stream
    assert running.app.hub.batches == 1  # one batch for the cluster connection
    before = await _per_master(cluster)
    await asyncio.sleep(1.0)
    after = await _per_master(cluster)
    calls = [after[name] - before[name] for name in after]
    # every cycle reads each master once; 60 requests/s over 3 masters is 20 cycles at most
    assert all(5 <= c <= 25 for c in calls), calls
    assert max(calls) - min(calls) <= 2, calls
    await cluster.lpush(keys[7], "job")
    for reader in streams[keys[7]]:
        assert await reader.next() is True
    for reader in streams[keys[0]]:
        assert await reader.nothing_for(0.05)
    for readers in streams.values():
        for reader in readers:
            reader.cancel()


async def test_sentinel_watchers_batch_one_call_on_the_master_per_cycle(
    serve, sentinels: list[Address], sentinel_master_name: str
) -> None:
    host, port = sentinel_master(sentinels, sentinel_master_name)
    master = redis.Redis(host=host, port=port)
    keys = [f"kqs-sentinel-watched-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    running = await serve(watch_intervals=(("redis-sentinel", 0.025),), watch_max_requests=40.0)
    streams = {
        key: [
            StreamReader(
                running.stub.StreamIsActive(
                    ref(_sentinel_trigger(sentinels, sentinel_master_name, key), name=f"so-{n}")
                )
            )
            for n in range(3)
        ]
        for key in keys
    }
    try:
        for readers in streams.values():
            for reader in readers:
                assert await reader.next() is False
        assert len(running.app.hub) == 6  # one watcher per list, not per stream
        assert running.app.hub.batches == 1  # one batch for the master
        before = _script_calls(master.info("commandstats"))
        await asyncio.sleep(1.0)
        calls = _script_calls(master.info("commandstats")) - before
        assert 10 <= calls <= 45, calls  # one call per cycle for all six lists
        master.lpush(keys[2], "job")
        for reader in streams[keys[2]]:
            assert await reader.next() is True
        for reader in streams[keys[0]]:
            assert await reader.nothing_for(0.05)
    finally:
        for readers in streams.values():
            for reader in readers:
                reader.cancel()
        master.delete(*keys)
