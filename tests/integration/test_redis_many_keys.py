"""Many keys per trigger on a real Redis: a glob (``useGlob``) or a comma list, combined by
``operation``, compared with Redis's own view. Each measurement is one script call whatever the
number of keys (counted from ``INFO commandstats`` on a Redis of the test's own, SCAN apart), a
glob matching more than ``maxKeys`` is FAILED_PRECONDITION, a key created later counts after
``globRefreshSeconds`` and not before, and ScaledObjects that differ only in thresholds or
``operation`` share one read."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping

import grpc
import pytest
import redis.asyncio as aioredis

from scaler.backends.redis import RedisBackend
from scaler.errors import UnsupportedResource
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


@pytest.fixture
async def prefix(redis_client: aioredis.Redis) -> AsyncIterator[str]:
    """A fresh key prefix on the shared Redis; every key under it is deleted after the test."""
    value = f"kqs-many-{uuid.uuid4().hex[:10]}"
    yield value
    made = [key async for key in redis_client.scan_iter(match=f"{value}*", count=1000)]
    for start in range(0, len(made), 500):
        await redis_client.delete(*made[start : start + 500])


async def _calls(client: aioredis.Redis) -> dict[str, int]:
    """Script calls (EVALSHA + EVAL) and SCAN calls the server has served."""
    stats = await client.info("commandstats")

    def calls(*names: str) -> int:
        return sum(int(stats.get(f"cmdstat_{n}", {}).get("calls", 0)) for n in names)

    return {"script": calls("evalsha", "eval"), "scan": calls("scan")}


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


async def _value(running, metadata: Mapping[str, str], name: str = "so") -> float:
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata, name=name))
    [value] = (await running.stub.GetMetrics(request)).metricValues
    return float(value.metricValueFloat)


async def _fill(client: aioredis.Redis, lengths: Mapping[str, int]) -> None:
    pipe = client.pipeline(transaction=False)
    for key, length in lengths.items():
        pipe.rpush(key, *range(length))
    await pipe.execute()


async def test_a_glob_matching_more_than_max_keys_is_failed_precondition(
    serve, redis_client, prefix, redis_metadata
) -> None:
    await _fill(redis_client, {f"{prefix}:{i}:wait": 1 for i in range(1500)})
    metadata = redis_metadata(f"{prefix}:*:wait", useGlob="true")  # maxKeys: 1,000
    backend = RedisBackend(timeout=2.0)
    trigger = backend.parse(metadata)
    client = backend.connect(trigger.connection)
    try:
        with pytest.raises(UnsupportedResource) as err:
            await client.measure(trigger.resource)
    finally:
        await client.aclose()
    found = re.search(r"matches at least (\d+) keys, more than maxKeys \(1000\)", str(err.value))
    assert found is not None, str(err.value)
    assert 1000 < int(found.group(1)) <= 1500  # SCAN stops once it has more: never a cut
    running = await serve()
    for call in (
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
        running.stub.IsActive(ref(metadata)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as rpc:
            await call
        assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "more than maxKeys (1000)" in (rpc.value.details() or "")
    # the same keys under a larger bound: every one of them, in one read
    assert await _value(running, {**metadata, "maxKeys": "2000"}) == 1500


async def test_200_keys_of_a_glob_are_summed_in_one_script_call(serve, own_redis) -> None:
    redis = aioredis.Redis.from_url(own_redis.url)
    lengths = {f"bull:q{i}:wait": 1 + i % 7 for i in range(200)}
    await _fill(redis, {**lengths, "bull:q0:active": 5, "bull:other": 9})  # not matched
    metadata = own_redis.metadata("bull:*:wait", useGlob="true")
    running = await serve(cache_ttl=0.0)
    try:
        # opens the client and loads the script (EVALSHA, then EVAL the first time)
        assert await _value(running, own_redis.metadata("bull:q0:wait")) == 1
        before = await _calls(redis)
        assert await _value(running, metadata) == sum([await redis.llen(k) for k in lengths])
        first = _delta(before, await _calls(redis))
        assert first["script"] == 1  # 200 keys, one EVALSHA
        assert first["scan"] >= 1  # the glob resolved by SCAN, counted apart
        before = await _calls(redis)
        assert await _value(running, metadata) == sum(lengths.values())
        assert _delta(before, await _calls(redis)) == {"script": 1, "scan": 0}  # reused
    finally:
        await redis.aclose()


async def test_a_key_created_later_counts_after_glob_refresh_seconds_and_not_before(
    serve, redis_client, prefix, redis_metadata
) -> None:
    await _fill(redis_client, {f"{prefix}:a": 3, f"{prefix}:b": 2})
    metadata = redis_metadata(f"{prefix}:*", useGlob="true", globRefreshSeconds="1")
    running = await serve(cache_ttl=0.0)  # every call reads Redis: only the glob is kept
    started = time.monotonic()
    assert await _value(running, metadata) == 5
    await _fill(redis_client, {f"{prefix}:c": 10, f"{prefix}:a": 1})
    # the known keys are read afresh (a grew by one), the new key not yet: the kept glob
    assert await _value(running, metadata) == 6
    assert time.monotonic() - started < 1.0, "too slow to show the refresh"
    while (value := await _value(running, metadata)) != 16:
        assert value == 6
        assert time.monotonic() - started < 2.0, "the new key never counted"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started >= 1.0  # not before the resolution expired


async def test_a_watcher_of_an_empty_glob_turns_active_when_a_key_appears(
    serve, redis_client, prefix, redis_metadata
) -> None:
    metadata = redis_metadata(f"{prefix}:*:wait", useGlob="true", globRefreshSeconds="1")
    running = await serve(watch_intervals=(("redis", 0.025),))
    reader = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    try:
        assert await reader.next() is False  # no key matches: a length of 0
        assert await _value(running, metadata) == 0
        await redis_client.rpush(f"{prefix}:emails:wait", "job")
        assert await reader.next(timeout=3.0) is True
    finally:
        reader.cancel()


async def test_a_comma_list_combines_by_sum_max_and_avg_in_one_read(
    serve, redis_client, prefix, redis_metadata
) -> None:
    a, b, missing = f"{prefix}:a", f"{prefix}:b", f"{prefix}:missing"
    await _fill(redis_client, {a: 3, b: 8})
    metadata = redis_metadata(f"{a}, {b} ,{missing},{a}")  # trimmed, each key once
    running = await serve(cache_ttl=5.0)
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs
    assert spec[0].metricName == f"redis-{a}, {b} ,{missing},{a}".replace(":", "-")  # KEDA's
    assert await _value(running, metadata) == 11
    assert await _value(running, {**metadata, "operation": "max"}) == 8
    assert await _value(running, {**metadata, "operation": "avg"}) == pytest.approx(11 / 3)
    # a missing key is 0, as KEDA's length of a missing list; activity follows the combination
    active = {**metadata, "operation": "max", "activationListLength": "8"}
    assert (await running.stub.IsActive(ref(active))).result is False


async def test_a_glob_over_streams_sums_pending_entries(
    serve, redis_client, prefix, redis_metadata
) -> None:
    for i in range(3):
        stream = f"{prefix}:orders:{i}"
        await redis_client.xgroup_create(stream, "workers", id="0", mkstream=True)
        for n in range(5):
            await redis_client.xadd(stream, {"n": n})
        await redis_client.xreadgroup("workers", "c1", {stream: ">"}, count=i + 1)
    base = {**redis_metadata(f"{prefix}:orders:*", useGlob="true"), "backend": "redis-streams"}
    base.pop("listName")
    metadata = {**base, "stream": f"{prefix}:orders:*", "consumerGroup": "workers"}
    running = await serve()
    assert await _value(running, metadata) == 1 + 2 + 3  # pendingEntriesCount, summed
    assert await _value(running, {**metadata, "operation": "max"}) == 3
    assert await _value(running, {**metadata, "lagCount": "5"}) == 4 + 3 + 2
    nothing = {**metadata, "stream": f"{prefix}:none:*"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _value(running, nothing)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND  # as a missing stream, for pending
    assert await _value(running, {**nothing, "lagCount": "5"}) == 0  # KEDA's lag of no stream
    assert await _value(running, {**base, "stream": f"{prefix}:none:*"}) == 0  # no length


async def test_an_age_over_several_lists_is_the_oldest_by_default(
    serve, redis_client, prefix, redis_metadata
) -> None:
    now, _ = await redis_client.time()
    for name, waited in (("a", 100), ("b", 50), ("c", 10)):
        await redis_client.lpush(f"{prefix}:{name}", json.dumps({"enqueued_at": now - waited}))
    metadata = redis_metadata(
        f"{prefix}:?", useGlob="true", mode="OldestAge", value="60", timestampField="enqueued_at"
    )
    running = await serve()
    assert await _value(running, metadata) == pytest.approx(100, abs=3)  # max: the oldest job
    mean = await _value(running, {**metadata, "operation": "avg"})
    assert mean == pytest.approx((100 + 50 + 10) / 3, abs=3)


async def test_fifty_scaled_objects_on_one_glob_cost_one_read(serve, own_redis) -> None:
    redis = aioredis.Redis.from_url(own_redis.url)
    await _fill(redis, {f"jobs:{i}": i + 1 for i in range(20)})
    running = await serve(cache_ttl=5.0)
    try:
        assert await _value(running, own_redis.metadata("warm")) == 0  # loads the script
        before = await _calls(redis)
        triggers = [
            own_redis.metadata(
                "jobs:*",
                useGlob="true",
                listLength=str(1 + i),
                activationListLength=str(i),
                operation=("sum", "max", "avg")[i % 3],
            )
            for i in range(50)
        ]
        values = await asyncio.gather(
            *(_value(running, t, name=f"so-{i}") for i, t in enumerate(triggers))
        )
        assert _delta(before, await _calls(redis)) == {"script": 1, "scan": 1}
        assert set(values) == {210.0, 20.0, 10.5}  # each trigger's operation, from one read
    finally:
        await redis.aclose()


async def test_a_key_that_is_no_utf8_is_read_as_its_bytes(
    serve, redis_client, prefix, redis_metadata
) -> None:
    await redis_client.rpush(f"{prefix}:".encode() + b"\xff\xfe", "a", "b")
    await redis_client.rpush(f"{prefix}:plain", "c")
    running = await serve()
    assert await _value(running, redis_metadata(f"{prefix}:*", useGlob="true")) == 3
