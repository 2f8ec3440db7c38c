"""``redis-cluster-streams`` and ``redis-sentinel-streams`` against the real Cluster and Sentinel
group, over gRPC: each of KEDA's three measures equals what Redis reports (``XLEN``, the
``XPENDING`` summary, ``XINFO GROUPS``' lag) for streams spread over every master, with KEDA's
metric names, and a batch of them costs one script call per master."""

from __future__ import annotations

import uuid

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from scaler.backends import build_backends
from scaler.backends.redis import RedisStream
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.redis_sentinel_faults import sentinel_master
from tests.integration.redis_topology_fixtures import Address

pytestmark = pytest.mark.integration

GROUP = "workers"


async def _metric(running, metadata: dict[str, str]) -> tuple[str, float]:
    [spec] = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=spec.metricName)
    [value] = (await running.stub.GetMetrics(request)).metricValues
    return spec.metricName, value.metricValueFloat


async def _fill(client, stream: str, entries: int, delivered: int) -> None:
    """``entries`` entries, a group, and ``delivered`` of them read by a consumer (pending)."""
    for n in range(entries):
        await client.xadd(stream, {"n": n})
    await client.xgroup_create(stream, GROUP, id="0")
    if delivered:
        await client.xreadgroup(GROUP, "c1", {stream: ">"}, count=delivered)


async def test_cluster_streams_equal_redis_over_every_master(
    serve, cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    streams = [cluster_keys("kqs-Stream_x.y") for _ in range(9)]
    owners = {cluster.get_node_from_key(s).name for s in streams}  # type: ignore[union-attr]
    assert len(owners) >= 2  # spread over masters (three with nine keys, almost always)
    for i, stream in enumerate(streams):
        await _fill(cluster, stream, entries=10 + i, delivered=i)
    running = await serve()
    base = {"backend": "redis-cluster-streams", "addresses": cluster_seeds}
    for stream in streams:
        name = f"redis-streams-{stream.replace('.', '-')}"  # KEDA's name, case kept
        length = await _metric(running, {**base, "stream": stream})
        pending = await _metric(running, {**base, "stream": stream, "consumerGroup": GROUP})
        lag = await _metric(
            running, {**base, "stream": stream, "consumerGroup": GROUP, "lagCount": "3"}
        )
        xlen: int = await cluster.xlen(stream)
        summary: dict[str, int] = await cluster.xpending(stream, GROUP)
        groups: list[dict[str, int]] = await cluster.xinfo_groups(stream)
        assert length == (name, float(xlen))
        assert pending == (name, float(summary["pending"]))
        assert lag == (name, float(groups[0]["lag"]))


async def test_cluster_streams_batch_is_one_call_per_master(
    cluster: RedisCluster, cluster_seeds: str, cluster_keys
) -> None:
    streams = [cluster_keys("kqs-stream") for _ in range(30)]
    for stream in streams:
        await _fill(cluster, stream, entries=4, delivered=1)
    backend = build_backends(2.0)["redis-cluster-streams"]
    trigger = backend.parse(
        {
            "backend": "redis-cluster-streams",
            "addresses": cluster_seeds,
            "stream": streams[0],
            "consumerGroup": GROUP,
            "lagCount": "1",
        }
    )
    resources = [RedisStream(s, GROUP, trigger.resource.read) for s in streams]
    client = backend.connect(trigger.connection)
    try:
        await client.measure(resources[0])
        results, requests = await client.measure_many(resources)
    finally:
        await client.aclose()
    assert requests == len({cluster.get_node_from_key(s).name for s in streams})  # type: ignore[union-attr]
    for stream, resource in zip(streams, resources, strict=True):
        outcome = results[resource]
        assert not isinstance(outcome, BaseException), outcome
        [group] = await cluster.xinfo_groups(stream)
        assert trigger.evaluate(outcome).value == group["lag"] == 3


async def test_sentinel_streams_equal_the_masters_view(
    serve, sentinels: list[Address], sentinel_master_name: str
) -> None:
    host, port = sentinel_master(sentinels, sentinel_master_name)
    master = redis.asyncio.Redis(host=host, port=port)
    stream = f"kqs-sentinel-stream-{uuid.uuid4().hex[:8]}"
    try:
        await _fill(master, stream, entries=12, delivered=5)
        running = await serve()
        base = {
            "backend": "redis-sentinel-streams",
            "addresses": ",".join(f"{h}:{p}" for h, p in sentinels),
            "sentinelMaster": sentinel_master_name,
            "stream": stream,
        }
        name = f"redis-streams-{stream}"
        assert await _metric(running, base) == (name, 12)
        assert await _metric(running, {**base, "consumerGroup": GROUP}) == (name, 5)
        lag = await _metric(running, {**base, "consumerGroup": GROUP, "lagCount": "2"})
        [group] = await master.xinfo_groups(stream)
        assert lag == (name, group["lag"]) == (name, 7)
    finally:
        await master.delete(stream)
        await master.aclose()
