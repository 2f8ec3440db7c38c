"""``mode: OldestAge`` and work in flight against a real Redis, compared with Redis's own view:
the elements pushed, ``TIME``, ``LLEN`` and its command statistics.

The job layouts are those of the frameworks: Sidekiq (JSON elements with ``enqueued_at``, LPUSH,
float seconds before Sidekiq 8 and integer milliseconds since), BullMQ (ids LPUSHed to
``bull:<q>:wait``, a hash ``bull:<q>:<id>`` with ``timestamp`` in milliseconds, the
``bull:<q>:active`` list), RQ (ids RPUSHed to ``rq:queue:<q>``, a hash ``rq:job:<id>`` with
``enqueued_at`` as an ISO string).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
import yaml

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.test_check_redis import (  # noqa: F401 (engine: a fixture)
    engine,
    manifest,
    run_json,
)

pytestmark = pytest.mark.integration

#: commands the read script runs inside EVALSHA; Redis counts them in commandstats too
SCRIPT_COMMANDS = frozenset({"type", "llen", "scard", "zcard", "hlen", "lindex", "hget", "time"})
#: slack for float arithmetic between Redis's TIME and the scaler's
EPSILON = 1e-3


async def redis_now(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000


@pytest.fixture
async def prefix(redis_client: aioredis.Redis, unique_key) -> AsyncIterator[str]:
    """A fresh key prefix; every key under it is deleted after the test."""
    base = unique_key("age")
    yield base
    keys = [key async for key in redis_client.scan_iter(match=f"{base}*")]
    if keys:
        await redis_client.delete(*keys)


async def metric(running, metadata: Mapping[str, str]) -> float:
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
    values = (await running.stub.GetMetrics(request)).metricValues
    assert len(values) == 1
    return float(values[0].metricValueFloat)


async def active(running, metadata: Mapping[str, str]) -> bool:
    return bool((await running.stub.IsActive(ref(metadata))).result)


async def assert_age(running, client, metadata: Mapping[str, str], enqueued: float) -> float:
    """The age GetMetrics answers lies between Redis TIME before and after it, minus
    ``enqueued``."""
    before = await redis_now(client)
    age = await metric(running, metadata)
    after = await redis_now(client)
    assert before - enqueued - EPSILON <= age <= after - enqueued + EPSILON, (before, age, after)
    return age


@pytest.mark.parametrize(
    ("version", "stamp"),
    [
        pytest.param("7", lambda t: t, id="Sidekiq 7: float seconds"),
        pytest.param("8", lambda t: int(t * 1000), id="Sidekiq 8: integer milliseconds"),
    ],
)
async def test_sidekiq_json_elements(
    serve, redis_client, redis_metadata, prefix, version, stamp
) -> None:
    queue = f"{prefix}:queue:default"
    now = await redis_now(redis_client)
    times = [stamp(now - 90.25), stamp(now - 30), stamp(now - 5)]
    for number, enqueued in enumerate(times):  # LPUSH: the oldest ends up on the right
        job = {"class": "HardJob", "jid": f"j{number}", "args": [], "enqueued_at": enqueued}
        await redis_client.lpush(queue, json.dumps(job))
    oldest = times[0] / 1000 if version == "8" else times[0]
    metadata = redis_metadata(
        queue, mode="OldestAge", value="60", timestampField="enqueued_at", activationValue="80"
    )
    running = await serve()
    age = await assert_age(running, redis_client, metadata, oldest)
    assert age > 80
    assert await active(running, metadata) is True


async def test_seconds_and_milliseconds_of_one_instant_are_one_age(
    serve, redis_client, redis_metadata, prefix
) -> None:
    enqueued = round(await redis_now(redis_client) - 42.5, 3)
    await redis_client.lpush(f"{prefix}:s", json.dumps({"t": enqueued}))
    await redis_client.lpush(f"{prefix}:ms", json.dumps({"t": round(enqueued * 1000)}))
    running = await serve()
    for key in (f"{prefix}:s", f"{prefix}:ms"):
        metadata = redis_metadata(key, mode="OldestAge", value="10", timestampField="t")
        await assert_age(running, redis_client, metadata, enqueued)


async def test_bullmq_ids_with_hashes_and_the_active_list(
    serve, redis_client, redis_metadata, prefix
) -> None:
    wait, active_list = f"{prefix}:wait", f"{prefix}:active"
    now = await redis_now(redis_client)
    created = {"1": int((now - 75) * 1000), "2": int((now - 10) * 1000)}
    for job_id, timestamp in created.items():
        await redis_client.hset(
            f"{prefix}:{job_id}", mapping={"name": "send", "data": "{}", "timestamp": timestamp}
        )
        await redis_client.lpush(wait, job_id)
    await redis_client.lpush(active_list, "0")
    metadata = redis_metadata(
        wait,
        mode="OldestAge",
        value="30",
        timestampField="timestamp",
        timestampHashKey=f"{prefix}:{{}}",
        processingListName=active_list,
    )
    running = await serve()
    await assert_age(running, redis_client, metadata, created["1"] / 1000)
    label = f"{metadata['address']}/{metadata['databaseIndex']}/{wait}"
    series = {"backend": "redis", "resource": label}
    assert running.sample("keda_queue_scaler_in_flight", series) == await redis_client.llen(
        active_list
    )
    assert running.sample("keda_queue_scaler_oldest_age_seconds", series) > 74
    # the worker takes job 1: job 2 is now the oldest waiting
    await redis_client.lmove(wait, active_list, "RIGHT", "LEFT")
    await _expire_cache(running)
    await assert_age(running, redis_client, metadata, created["2"] / 1000)


async def _expire_cache(running) -> None:
    await asyncio.sleep(running.app.settings.cache_ttl)


async def test_rq_left_end_with_iso_strings(serve, redis_client, redis_metadata, prefix) -> None:
    queue = f"{prefix}:rq:queue:default"
    now = await redis_now(redis_client)
    enqueued = {"a1": now - 120.123456, "b2": now - 3}
    for job_id, at in enqueued.items():  # RPUSH: the oldest is on the left
        iso = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await redis_client.hset(f"{prefix}:rq:job:{job_id}", mapping={"enqueued_at": iso})
        await redis_client.rpush(queue, job_id)
    metadata = redis_metadata(
        queue,
        mode="OldestAge",
        value="60",
        oldestEnd="left",
        timestampField="enqueued_at",
        timestampHashKey=f"{prefix}:rq:job:{{}}",
    )
    running = await serve()
    await assert_age(running, redis_client, metadata, round(enqueued["a1"], 6))


async def test_an_empty_list_is_age_0_and_inactive(
    serve, redis_client, redis_metadata, prefix
) -> None:
    key = f"{prefix}:empty"
    assert await redis_client.exists(key) == 0  # Redis deletes empty lists
    metadata = redis_metadata(key, mode="OldestAge", value="30", timestampField="enqueued_at")
    running = await serve()
    assert await metric(running, metadata) == 0
    assert await active(running, metadata) is False


async def _status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def test_an_unparsable_element_is_failed_precondition_quoting_80_characters(
    serve, redis_client, redis_metadata, prefix
) -> None:
    key = f"{prefix}:q"
    element = "not json: " + "x" * 100 + "END-OF-ELEMENT"
    await redis_client.lpush(key, element)
    metadata = redis_metadata(key, mode="OldestAge", value="30", timestampField="enqueued_at")
    running = await serve()
    for call in (
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
        running.stub.IsActive(ref(metadata)),
    ):
        code, details = await _status(call)
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert f"the oldest element of {key!r}: not a JSON object: " in details
        assert repr(element[:80] + "...") in details
        assert "END-OF-ELEMENT" not in details


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        pytest.param(
            "no hash",
            "names the hash '{p}:h:7', which does not exist, so its enqueue time "
            "(field 'timestamp') is unknown",
            id="a missing hash",
        ),
        pytest.param(
            "no field",
            "the hash '{p}:h:7' of the oldest element of '{p}:q' has no field "
            "'timestamp' (timestampField)",
            id="a missing field",
        ),
        pytest.param("a set", "key '{p}:q' is a set; mode OldestAge reads lists only", id="a set"),
    ],
)
async def test_a_missing_fact_is_an_error_that_names_it(
    serve, redis_client, redis_metadata, prefix, prepare, problem
) -> None:
    key = f"{prefix}:q"
    if prepare == "a set":
        await redis_client.sadd(key, "7")
    else:
        await redis_client.lpush(key, "7")
    if prepare == "no field":
        await redis_client.hset(f"{prefix}:h:7", mapping={"name": "job"})
    metadata = redis_metadata(
        key,
        mode="OldestAge",
        value="30",
        timestampField="timestamp",
        timestampHashKey=f"{prefix}:h:{{}}",
    )
    running = await serve()
    code, details = await _status(
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata)))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert problem.format(p=prefix) in details


async def test_a_processing_list_keeps_is_active_true_with_the_key_and_false_without(
    serve, redis_client, redis_metadata, prefix
) -> None:
    wait, processing = f"{prefix}:wait", f"{prefix}:processing"
    await redis_client.lpush(processing, "job-running")
    assert (await redis_client.llen(wait), await redis_client.llen(processing)) == (0, 1)
    running = await serve()
    watching = redis_metadata(wait, processingListName=processing)
    assert await active(running, {**watching, "activeWhileInFlight": "true"}) is True
    assert await active(running, watching) is False  # KEDA's behaviour: nothing waits
    assert await active(running, redis_metadata(wait)) is False
    await redis_client.delete(processing)
    await _expire_cache(running)
    assert await active(running, {**watching, "activeWhileInFlight": "true"}) is False


async def test_include_processing_adds_the_processing_list_to_the_value(
    serve, redis_client, redis_metadata, prefix
) -> None:
    wait, processing = f"{prefix}:wait", f"{prefix}:processing"
    await redis_client.rpush(wait, *range(3))
    await redis_client.rpush(processing, *range(2))
    running = await serve()
    metadata = redis_metadata(wait, processingListName=processing, includeProcessing="true")
    expected = await redis_client.llen(wait) + await redis_client.llen(processing)
    assert await metric(running, metadata) == expected == 5
    assert await metric(running, redis_metadata(wait, processingListName=processing)) == 3


async def _top_level_calls(client: aioredis.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_one_evalsha_per_read_from_redis_command_statistics(serve, own_redis) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        now = await redis_now(client)
        await client.hset("bull:q:1", mapping={"timestamp": int((now - 20) * 1000)})
        await client.lpush("bull:q:wait", "1")
        await client.lpush("bull:q:active", "0", "00")
        metadata = own_redis.metadata(
            "bull:q:wait",
            mode="OldestAge",
            value="30",
            timestampField="timestamp",
            timestampHashKey="bull:q:{}",
            processingListName="bull:q:active",
            activeWhileInFlight="true",
        )
        running = await serve(cache_ttl=0.0)  # every call reads Redis
        await metric(running, metadata)  # loads the script and opens the connection
        before = await _top_level_calls(client)
        reads = 5
        for _ in range(reads):
            assert await metric(running, metadata) > 19
        after = await _top_level_calls(client)
    finally:
        await client.aclose()
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in after}
    top_level = {c: n for c, n in delta.items() if n and c not in SCRIPT_COMMANDS | {"info"}}
    assert top_level == {"evalsha": reads}
    # inside each call: the list's length, its oldest element, the hash field, the clock and
    # the processing list's length
    assert (delta["lindex"], delta["hget"], delta["time"]) == (reads, reads, reads)


def with_metric_types(path: Path, *metric_types: str) -> Path:
    """The manifest at ``path`` with each trigger's ``metricType`` set, in order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for trigger, metric_type in zip(document["spec"]["triggers"], metric_types, strict=True):
        trigger["metricType"] = metric_type
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def test_check_prints_the_age_and_a_future_timestamp_counts_0(
    engine,  # noqa: F811 (the fixture imported above)
    tmp_path,
    redis_client,
    redis_metadata,
    redis_url,
    prefix,
) -> None:
    now = await redis_now(redis_client)
    await redis_client.lpush(f"{prefix}:old", json.dumps({"enqueued_at": now - 90}))
    await redis_client.lpush(f"{prefix}:ahead", json.dumps({"enqueued_at": now + 60}))
    age = {"mode": "OldestAge", "value": "30", "timestampField": "enqueued_at"}
    triggers = [redis_metadata(f"{prefix}:{key}", **age) for key in ("old", "ahead", "old")]
    path = with_metric_types(manifest(tmp_path, *triggers), "Value", "Value", "AverageValue")
    status, rows = await run_json(engine, path, redis_url)
    assert status == 0
    old, ahead, average = rows
    assert 90 <= old["value"] < 100
    assert old["facts"]["oldest_age_seconds"] == old["value"]
    assert old["facts"]["oldest_enqueued_at"] == pytest.approx(now - 90)
    assert (old["active"], old["metricType"], old["notes"]) == (True, "Value", [])
    assert (ahead["value"], ahead["active"]) == (0, False)
    assert 50 < ahead["facts"]["oldest_in_future_seconds"] <= 60
    assert any("metricType: Value" in note for note in average["notes"])
