"""``backend: redis-cluster`` against a real Redis Cluster (three masters, three replicas),
compared with the cluster's own view: each key on the master that owns its slot, one script call
per master for a batch, a master down failing its own keys only, a moved slot followed."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from scaler.backends.redis import RedisClusterBackend, RedisList
from scaler.errors import BackendUnavailable, UnsupportedResource
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.redis_cluster_faults import cluster_kill_master, cluster_restart_node

pytestmark = pytest.mark.integration


def metadata(seeds: str, key: str, **extra: str) -> dict[str, str]:
    return {"backend": "redis-cluster", "addresses": seeds, "listName": key, **extra}


def _owner(cluster: RedisCluster, key: str) -> ClusterNode:
    node = cluster.get_node_from_key(key)
    assert node is not None, f"no master serves the slot of {key}"
    return node


def _master_of(cluster: RedisCluster, key: str) -> str:
    return str(_owner(cluster, key).name)


async def _script_calls(cluster: RedisCluster) -> dict[str, int]:
    """EVALSHA + EVAL calls each master has served, from its command statistics."""
    calls: dict[str, int] = {}
    for node in cluster.get_primaries():
        stats = await cluster.info("commandstats", target_nodes=node)
        calls[node.name] = sum(
            int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
        )
    return calls


async def test_each_type_equals_the_clusters_own_count_over_every_master(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    made = []
    for i in range(12):
        key = cluster_keys(f"kqs-Cluster_{i}.jobs")
        kind = ("list", "set", "zset", "hash")[i % 4]
        values = [f"v{j}" for j in range(i + 1)]
        if kind == "list":
            await cluster.rpush(key, *values)
        elif kind == "set":
            await cluster.sadd(key, *values)
        elif kind == "zset":
            await cluster.zadd(key, {v: j for j, v in enumerate(values)})
        else:
            await cluster.hset(key, mapping={v: 1 for v in values})
        made.append((key, kind))
    assert len({_master_of(cluster, key) for key, _ in made}) == 3  # spread over masters
    running = await serve()
    for key, kind in made:
        trigger = metadata(cluster_seeds, key)
        spec = (await running.stub.GetMetricSpec(ref(trigger))).metricSpecs
        assert [s.metricName for s in spec] == [f"redis-{key.replace('.', '-')}"]  # KEDA's name
        request = pb.GetMetricsRequest(scaledObjectRef=ref(trigger), metricName=spec[0].metricName)
        [value] = (await running.stub.GetMetrics(request)).metricValues
        count = {"list": cluster.llen, "set": cluster.scard, "zset": cluster.zcard}.get(
            kind, cluster.hlen
        )
        assert value.metricValueFloat == await count(key)


async def test_a_batch_costs_one_script_call_per_master(
    cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    lists = [cluster_keys() for _ in range(60)]
    for i, key in enumerate(lists):
        await cluster.rpush(key, *range(i + 1))
    backend = RedisClusterBackend(timeout=2.0)
    trigger = backend.parse(metadata(cluster_seeds, lists[0]))
    client = backend.connect(trigger.connection)
    try:
        await client.measure(RedisList(lists[0]))  # the slot map is loaded
        before = await _script_calls(cluster)
        results, requests = await client.measure_many([RedisList(key) for key in lists])
        after = await _script_calls(cluster)
    finally:
        await client.aclose()
    assert requests == 3
    assert {name: after[name] - before[name] for name in after} == dict.fromkeys(before, 1)
    for key in lists:
        outcome = results[RedisList(key)]
        assert not isinstance(outcome, BaseException)
        assert outcome.value == await cluster.llen(key)


async def test_keys_of_two_masters_in_one_read_are_refused_with_the_fix(
    cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    first = cluster_keys()
    other = next(
        k
        for k in (cluster_keys() for _ in range(50))
        if _master_of(cluster, k) != _master_of(cluster, first)
    )
    tagged = f"{{{first}}}:active"
    await cluster.rpush(first, "a", "b")
    await cluster.rpush(tagged, "c")
    backend = RedisClusterBackend(timeout=2.0)
    client = backend.connect(backend.parse(metadata(cluster_seeds, first)).connection)
    try:
        results, _ = await client.measure_many(
            [RedisList(first, None, other), RedisList(first, None, tagged), RedisList(other)]
        )
    finally:
        await client.aclose()
        await cluster.delete(tagged)
    refused = results[RedisList(first, None, other)]
    assert isinstance(refused, UnsupportedResource)
    assert "hash tag" in str(refused)
    served = results[RedisList(first, None, tagged)]
    assert not isinstance(served, BaseException)
    assert (served.value, served.facts["in_flight"]) == (2, 1)
    assert not isinstance(results[RedisList(other)], BaseException)  # not disturbed


async def test_a_moved_slot_is_followed(
    cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    key = cluster_keys()
    await cluster.rpush(key, *range(7))
    backend = RedisClusterBackend(timeout=2.0)
    client = backend.connect(backend.parse(metadata(cluster_seeds, key)).connection)
    slot = cluster.keyslot(key)
    source = _owner(cluster, key)
    target = next(n for n in cluster.get_primaries() if n.name != source.name)
    try:
        assert (await client.measure(RedisList(key))).value == 7  # the client's map: source
        await _move_slot(cluster, slot, source, target)
        results, _ = await client.measure_many([RedisList(key)])  # MOVED, then the new owner
        outcome = results[RedisList(key)]
        assert not isinstance(outcome, BaseException)
        assert outcome.value == 7
        assert (await client.measure(RedisList(key))).value == 7
    finally:
        await client.aclose()
        await _move_slot(cluster, slot, target, source)


async def _move_slot(
    cluster: RedisCluster, slot: int, source: ClusterNode, target: ClusterNode
) -> None:
    """Reshard one slot by hand, as ``redis-cli --cluster reshard`` does."""
    ids = {}
    for node in (source, target):
        ids[node.name] = await cluster.execute_command("CLUSTER", "MYID", target_nodes=node)
    source_id, target_id = (
        ids[n.name].decode() if isinstance(ids[n.name], bytes) else ids[n.name]
        for n in (source, target)
    )
    await cluster.execute_command(
        "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id, target_nodes=target
    )
    await cluster.execute_command(
        "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id, target_nodes=source
    )
    while moving := await cluster.execute_command(
        "CLUSTER", "GETKEYSINSLOT", slot, 100, target_nodes=source
    ):
        await cluster.execute_command(
            "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *moving, target_nodes=source
        )
    for node in (target, source):
        await cluster.execute_command(
            "CLUSTER", "SETSLOT", slot, "NODE", target_id, target_nodes=node
        )
    for node in cluster.get_primaries():
        if node.name not in (source.name, target.name):
            await cluster.execute_command(
                "CLUSTER", "SETSLOT", slot, "NODE", target_id, target_nodes=node
            )


async def test_a_master_down_fails_its_own_keys_only(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    lists = [cluster_keys() for _ in range(30)]
    for i, key in enumerate(lists):
        await cluster.rpush(key, *range(i + 1))
    for master in cluster.get_primaries():
        # replication is asynchronous: the replica that takes over must have the lists already,
        # or Redis itself would have lost them
        await cluster.execute_command("WAIT", 1, 5000, target_nodes=master)
    expected = {key: i + 1 for i, key in enumerate(lists)}
    owner = {key: _master_of(cluster, key) for key in lists}
    victim = owner[lists[0]]
    backend = RedisClusterBackend(timeout=1.0)
    client = backend.connect(backend.parse(metadata(cluster_seeds, lists[0])).connection)
    killed = None
    try:
        await client.measure_many([RedisList(key) for key in lists])
        killed = cluster_kill_master(int(victim.rpartition(":")[2]))
        results, _ = await client.measure_many([RedisList(key) for key in lists])
        for key in lists:
            outcome = results[RedisList(key)]
            if owner[key] == victim:
                assert isinstance(outcome, BackendUnavailable), outcome  # an error, never 0
            else:
                assert not isinstance(outcome, BaseException), outcome
                assert outcome.value == expected[key]
        # the replica takes over (cluster-node-timeout); then every key is served again
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            results, _ = await client.measure_many([RedisList(key) for key in lists])
            if all(not isinstance(results[RedisList(k)], BaseException) for k in lists):
                break
            assert asyncio.get_running_loop().time() < deadline, "no replica took over"
            await asyncio.sleep(0.5)
        assert {k: results[RedisList(k)].value for k in lists} == expected  # type: ignore[union-attr]
    finally:
        await client.aclose()
        if killed is not None:
            cluster_restart_node(killed)
