"""The stream backends against a real Redis, through the backend's client and over gRPC, compared
with what Redis itself reports: ``XLEN``, the ``XPENDING`` summary, ``XINFO GROUPS``' lag, the
entries ``XRANGE`` lists, ``TIME`` and the command statistics.

Redis 7.0 reports a group's lag as null after ``XGROUP SETID`` to an id in the middle and after
``XDEL`` of an undelivered entry, and as larger than the stream after ``XTRIM`` removed
undelivered entries; each case is produced here, checked to be what Redis says, and the
scaler's count compared with the entries really after the group's last-delivered id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from scaler.backends import build_backends
from scaler.backends.base import OLDEST_AGE, Evaluation, Measurement
from scaler.backends.redis import StreamTrigger
from scaler.backends.redis import stream_scripts as scripts
from scaler.errors import TargetNotFound, UnsupportedResource
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.conftest import metadata_for
from tests.streams import StreamReader

pytestmark = pytest.mark.integration

#: how far an age may be from the id's time, beyond Redis TIME read before and after
TOLERANCE = 0.010
GROUP = "workers"

Metadata = dict[str, str]
Evaluate = Callable[[Mapping[str, str]], Awaitable[tuple[Evaluation, Measurement]]]


def stream_metadata(url: str, stream: str, **extra: str) -> Metadata:
    """``redis-streams`` trigger metadata for the server at ``url``."""
    metadata = metadata_for(url, stream)
    del metadata["listName"]
    return {**metadata, "backend": "redis-streams", "stream": stream, **extra}


@pytest.fixture
def streams(redis_url: str) -> Callable[..., Metadata]:
    return lambda stream, **extra: stream_metadata(redis_url, stream, **extra)


@pytest.fixture
async def evaluate() -> AsyncIterator[Evaluate]:
    """``await evaluate(metadata)``: parse, measure through the backend's own client, evaluate."""
    backend = build_backends(2.0)["redis-streams"]
    clients: list[Any] = []

    async def run(metadata: Mapping[str, str]) -> tuple[Evaluation, Measurement]:
        trigger = backend.parse(metadata)
        client = backend.connect(trigger.connection)
        clients.append(client)
        measurement = await client.measure(trigger.resource)
        return trigger.evaluate(measurement), measurement

    yield run
    for client in clients:
        await client.aclose()


async def redis_now(client: aioredis.Redis) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1_000_000


async def redis_ms(client: aioredis.Redis) -> int:
    return int(await redis_now(client) * 1000)


async def group_info(client: aioredis.Redis, stream: str, group: str = GROUP) -> dict[str, Any]:
    [info] = [g for g in await client.xinfo_groups(stream) if g["name"] == group.encode()]
    return dict(info)


# redis-py's stream replies are typed loosely: the helpers take the client as Any
async def ids(client: Any, stream: str) -> list[str]:
    return [entry_id.decode() for entry_id, _ in await client.xrange(stream)]


async def after(client: Any, stream: str, last: str) -> int:
    """The entries really after ``last``, as Redis lists them."""
    return len(await client.xrange(stream, f"({last}", "+"))


async def fill(client: aioredis.Redis, stream: str, count: int) -> None:
    for number in range(count):
        await client.xadd(stream, {"n": number})


async def metric(running: Any, metadata: Mapping[str, str]) -> float:
    request = pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
    [value] = (await running.stub.GetMetrics(request)).metricValues
    return float(value.metricValueFloat)


async def active(running: Any, metadata: Mapping[str, str]) -> bool:
    return bool((await running.stub.IsActive(ref(metadata))).result)


async def status(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def test_each_measure_is_what_redis_reports(
    serve, redis_client, unique_key, streams, evaluate
) -> None:
    key = unique_key("Orders.Stream")
    await fill(redis_client, key, 20)
    await redis_client.xgroup_create(key, GROUP, "0")
    read = await redis_client.xreadgroup(GROUP, "c1", {key: ">"}, count=7)
    await redis_client.xack(key, GROUP, *[entry_id for entry_id, _ in read[0][1][:3]])
    xlen = await redis_client.xlen(key)
    pending = (await redis_client.xpending(key, GROUP))["pending"]
    lag = (await group_info(redis_client, key))["lag"]
    assert (xlen, pending, lag) == (20, 4, 13)
    cases = [
        (streams(key, streamLength="4"), xlen, 4),
        (streams(key, consumerGroup=GROUP, pendingEntriesCount="2"), pending, 2),
        (streams(key, consumerGroup=GROUP, lagCount="3"), lag, 3),
    ]
    running = await serve()
    name = f"redis-streams-{key.replace('.', '-')}"  # KEDA's NormalizeString keeps the case
    for metadata, expected, target in cases:
        evaluation, measurement = await evaluate(metadata)
        assert evaluation == Evaluation(expected, True)
        assert measurement.facts["xlen"] == xlen
        [spec] = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs
        assert (spec.metricName, spec.targetSize) == (name, target)
        assert await metric(running, metadata) == expected
        assert await active(running, metadata) is True
        # KEDA: active iff the count > activationLagCount
        assert await active(running, {**metadata, "activationLagCount": str(expected)}) is False
    facts = (await evaluate(cases[2][0]))[1].facts
    assert (facts["lag_source"], facts["pending"], facts["entries_read"]) == ("xinfo", 4, 7)


@pytest.mark.parametrize("position", [2, 11, 25])
async def test_a_null_lag_after_setid_is_the_count_after_the_id(
    serve, redis_client, unique_key, streams, evaluate, monkeypatch, position
) -> None:
    key = unique_key("setid")
    await fill(redis_client, key, 30)
    await redis_client.xgroup_create(key, GROUP, "0")
    middle = (await ids(redis_client, key))[position]
    await redis_client.xgroup_setid(key, GROUP, middle)
    assert (await group_info(redis_client, key))["lag"] is None  # Redis cannot say
    expected = await after(redis_client, key, middle)
    assert expected == 29 - position
    metadata = streams(key, consumerGroup=GROUP, lagCount="5")
    # small chunks: the count runs over several XRANGE calls from both sides
    monkeypatch.setattr(scripts, "COUNT_CHUNK", 4)
    evaluation, measurement = await evaluate(metadata)
    assert evaluation.value == expected
    assert (measurement.facts["lag_source"], measurement.facts["lag_counted_because"]) == (
        "counted",
        "null",
    )
    running = await serve()
    assert await metric(running, metadata) == expected


async def test_a_null_lag_after_xdel_is_counted_and_the_deleted_entry_reported(
    redis_client, unique_key, streams, evaluate
) -> None:
    key = unique_key("xdel")
    await fill(redis_client, key, 10)
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xreadgroup(GROUP, "c1", {key: ">"}, count=5)
    await redis_client.xdel(key, (await ids(redis_client, key))[7])  # an undelivered entry
    info = await group_info(redis_client, key)
    assert info["lag"] is None
    expected = await after(redis_client, key, info["last-delivered-id"].decode())
    assert expected == 4
    evaluation, measurement = await evaluate(streams(key, consumerGroup=GROUP, lagCount="1"))
    assert evaluation.value == expected
    facts = measurement.facts
    assert (facts["lag_source"], facts["deleted_undelivered"], facts["entries_added"]) == (
        "counted",
        1,
        10,
    )


async def test_a_lag_beyond_xlen_after_xtrim_is_counted_and_the_trim_reported(
    redis_client, unique_key, streams, evaluate
) -> None:
    key = unique_key("xtrim")
    await fill(redis_client, key, 10)
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xreadgroup(GROUP, "c1", {key: ">"}, count=4)
    await redis_client.xtrim(key, maxlen=3, approximate=False)
    info = await group_info(redis_client, key)
    xlen = await redis_client.xlen(key)
    assert info["lag"] is None or info["lag"] > xlen  # Redis counts the trimmed entries
    expected = await after(redis_client, key, info["last-delivered-id"].decode())
    assert expected == xlen == 3
    evaluation, measurement = await evaluate(streams(key, consumerGroup=GROUP, lagCount="1"))
    assert evaluation.value == expected
    assert measurement.facts["lag_source"] == "counted"
    # 10 added, 4 read, 3 left: 3 were trimmed before the group read them
    assert measurement.facts["deleted_undelivered"] == 3


async def test_a_count_beyond_the_limit_is_failed_precondition(
    serve, redis_client, unique_key, streams, evaluate, monkeypatch
) -> None:
    key = unique_key("limit")
    await fill(redis_client, key, 40)
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xgroup_setid(key, GROUP, (await ids(redis_client, key))[19])
    monkeypatch.setattr(scripts, "COUNT_CHUNK", 3)
    monkeypatch.setattr(scripts, "COUNT_LIMIT", 12)
    metadata = streams(key, consumerGroup=GROUP, lagCount="1")
    with pytest.raises(UnsupportedResource, match="would read more than"):
        await evaluate(metadata)
    running = await serve()
    code, details = await status(running.stub.IsActive(ref(metadata)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"stream {key!r}" in details
    # what needs no count is still read
    assert await metric(running, streams(key, consumerGroup=GROUP)) == 0


@pytest.mark.parametrize(
    ("extra", "stream_missing", "group_missing"),
    [
        pytest.param({}, 0, None, id="streamLength: a missing stream is 0"),
        pytest.param({"lagCount": "2"}, 0, 5, id="lagCount: 0, and XLEN without the group"),
        pytest.param({"pendingEntriesCount": "2"}, "NOT_FOUND", "NOT_FOUND", id="pending"),
        pytest.param(
            {"mode": "OldestUndeliveredAge", "value": "5"},
            "NOT_FOUND",
            "NOT_FOUND",
            id="undelivered",
        ),
        pytest.param(
            {"mode": "OldestPendingAge", "value": "5"}, "NOT_FOUND", "NOT_FOUND", id="pending age"
        ),
    ],
)
async def test_a_missing_stream_or_group_is_kedas_answer_or_not_found(
    serve, redis_client, unique_key, streams, evaluate, extra, stream_missing, group_missing
) -> None:
    missing, present = unique_key("missing"), unique_key("present")
    assert await redis_client.exists(missing) == 0
    await fill(redis_client, present, 5)
    with_group = {"consumerGroup": GROUP} if extra else {}
    running = await serve()
    for stream, expected in ((missing, stream_missing), (present, group_missing)):
        if expected is None:
            continue  # the length has no group to miss
        metadata = streams(stream, **with_group, **extra)
        if expected == "NOT_FOUND":
            with pytest.raises(TargetNotFound) as err:
                await evaluate(metadata)
            named = f"stream {stream!r}" + (
                "" if stream == missing else f" has no consumer group {GROUP!r}"
            )
            assert named in str(err.value)
            for call in (
                running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
                running.stub.IsActive(ref(metadata)),
            ):
                code, details = await status(call)
                assert code == grpc.StatusCode.NOT_FOUND
                assert named in details
        else:
            assert (await evaluate(metadata))[0] == Evaluation(expected, expected > 0)
            assert await metric(running, metadata) == expected
            assert await active(running, metadata) is (expected > 0)


async def assert_age(running: Any, client: aioredis.Redis, metadata: Metadata, at_ms: int) -> float:
    """The age GetMetrics answers is Redis TIME (read before and after) minus the id's time."""
    before = await redis_now(client)
    age = await metric(running, metadata)
    after_call = await redis_now(client)
    at = at_ms / 1000
    assert before - at - TOLERANCE <= age <= after_call - at + TOLERANCE, (before, age, after_call)
    return age


async def test_ages_are_redis_time_minus_the_ids(
    serve, redis_client, unique_key, streams, evaluate
) -> None:
    key = unique_key("ages")
    now = await redis_ms(redis_client)
    oldest, next_up = now - 30_000, now - 5_000
    for entry_id in (f"{oldest}-0", f"{next_up}-0", f"{next_up}-1"):
        await redis_client.xadd(key, {"job": entry_id}, id=entry_id)
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xreadgroup(GROUP, "c1", {key: ">"}, count=1)  # the oldest is pending
    undelivered = streams(key, consumerGroup=GROUP, mode="OldestUndeliveredAge", value="10")
    pending = streams(key, consumerGroup=GROUP, mode="OldestPendingAge", value="10")
    running = await serve(cache_ttl=0.0)
    assert 4.99 < await assert_age(running, redis_client, undelivered, next_up) < 5.5
    assert 29.99 < await assert_age(running, redis_client, pending, oldest) < 30.5
    # active iff the age > activationValue
    assert await active(running, {**undelivered, "activationValue": "6"}) is False
    assert await active(running, {**pending, "activationValue": "6"}) is True
    [spec] = (await running.stub.GetMetricSpec(ref(undelivered))).metricSpecs
    assert (spec.metricName, spec.targetSizeFloat) == (f"redis-streams-{key}", 10.0)
    _, measurement = await evaluate(undelivered)
    assert measurement.facts[OLDEST_AGE] == measurement.facts["oldest_undelivered_age_seconds"]
    assert measurement.facts["oldest_pending_id"] == f"{oldest}-0"
    label = f"{undelivered['address']}/{undelivered['databaseIndex']}/{key}/{GROUP}"
    series = {"backend": "redis-streams", "resource": label}
    assert 4.99 < running.sample("keda_queue_scaler_oldest_age_seconds", series) < 5.5
    assert running.sample("keda_queue_scaler_in_flight", series) == 1
    # everything delivered and acknowledged: both ages are 0
    read = await redis_client.xreadgroup(GROUP, "c1", {key: ">"})
    assert await metric(running, undelivered) == 0
    await redis_client.xack(key, GROUP, f"{oldest}-0", *[i for i, _ in read[0][1]])
    assert await metric(running, pending) == 0


async def test_a_pending_entry_claimed_by_another_consumer_still_counts(
    serve, redis_client, unique_key, streams
) -> None:
    key = unique_key("claimed")
    now = await redis_ms(redis_client)
    first, second = now - 40_000, now - 20_000
    for entry_id in (f"{first}-0", f"{second}-0"):
        await redis_client.xadd(key, {"job": entry_id}, id=entry_id)
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xreadgroup(GROUP, "c1", {key: ">"})
    metadata = streams(key, consumerGroup=GROUP, mode="OldestPendingAge", value="10")
    running = await serve(cache_ttl=0.0)
    await assert_age(running, redis_client, metadata, first)
    # another consumer claims the oldest: it is still pending, and has waited as long
    await redis_client.xclaim(key, GROUP, "c2", 0, [f"{first}-0"])
    await assert_age(running, redis_client, metadata, first)
    await redis_client.xautoclaim(key, GROUP, "c3", 0, "0-0")
    assert (await redis_client.xpending(key, GROUP))["consumers"] == [{"name": b"c3", "pending": 2}]
    await assert_age(running, redis_client, metadata, first)
    await redis_client.xack(key, GROUP, f"{first}-0")
    await assert_age(running, redis_client, metadata, second)


async def test_an_explicit_id_that_is_no_time_is_failed_precondition_for_ages(
    serve, redis_client, unique_key, streams
) -> None:
    key = unique_key("explicit")
    await redis_client.xadd(key, {"job": "a"}, id="1-1")
    await redis_client.xadd(key, {"job": "b"}, id="2-1")
    await redis_client.xgroup_create(key, GROUP, "0")
    await redis_client.xreadgroup(GROUP, "c1", {key: ">"}, count=1)
    running = await serve()
    for mode in ("OldestUndeliveredAge", "OldestPendingAge"):
        metadata = streams(key, consumerGroup=GROUP, mode=mode, value="10")
        code, details = await status(
            running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata)))
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert (
            "the first undelivered entry has the id '2-1' and the oldest pending entry has the "
            "id '1-1', which is no time"
        ) in details
    # the counts do not read ids as times
    assert await metric(running, streams(key, consumerGroup=GROUP)) == 1
    assert await metric(running, streams(key, consumerGroup=GROUP, lagCount="1")) == 1


async def test_active_while_in_flight_follows_the_pending_entries(
    serve, redis_client, unique_key, streams
) -> None:
    key = unique_key("in-flight")
    await fill(redis_client, key, 1)
    await redis_client.xgroup_create(key, GROUP, "0")
    [[_, [(entry_id, _fields)]]] = await redis_client.xreadgroup(GROUP, "c1", {key: ">"})
    lag = streams(key, consumerGroup=GROUP, lagCount="5")
    kept = {**lag, "activeWhileInFlight": "true"}
    running = await serve(cache_ttl=0.0)
    assert await metric(running, lag) == 0  # nothing waits: KEDA would scale to zero
    assert (await active(running, lag), await active(running, kept)) == (False, True)
    await redis_client.xack(key, GROUP, entry_id)
    assert await active(running, kept) is False


async def _script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


async def test_a_batch_of_50_streams_is_one_script_call_and_each_outcome_its_own(
    own_redis,
) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    backend = build_backends(2.0)["redis-streams"]
    variants: list[Metadata] = [
        {},
        {"consumerGroup": GROUP},
        {"consumerGroup": GROUP, "lagCount": "2"},
        {"consumerGroup": GROUP, "mode": "OldestUndeliveredAge", "value": "9"},
    ]
    triggers: list[StreamTrigger] = []
    expected: dict[int, float] = {}
    try:
        for number in range(50):
            key = f"s{number}"
            await fill(client, key, number % 7 + 1)
            await client.xgroup_create(key, GROUP, "0")
            if number % 3:
                await client.xreadgroup(GROUP, "c1", {key: ">"}, count=number % 3)
            trigger = backend.parse(
                stream_metadata(own_redis.url, key, **variants[number % len(variants)])
            )
            assert isinstance(trigger, StreamTrigger)
            triggers.append(trigger)
            info = await group_info(client, key)
            expected[number] = {
                "streamLength": await client.xlen(key),
                "pendingEntriesCount": info["pending"],
                "lagCount": info["lag"],
            }.get(trigger.measure, -1)
        await client.lpush("a-list", "x")
        odd = [
            backend.parse(stream_metadata(own_redis.url, "nowhere", consumerGroup=GROUP)),
            backend.parse(
                stream_metadata(own_redis.url, "nowhere", consumerGroup=GROUP, lagCount="1")
            ),
            backend.parse(stream_metadata(own_redis.url, "s1", consumerGroup="nobody")),
            backend.parse(stream_metadata(own_redis.url, "a-list")),
        ]
        stream_client = backend.connect(triggers[0].connection)
        resources = [t.resource for t in (*triggers, *odd)]
        await stream_client.measure_many(resources)  # loads the script, opens the connection
        before = await _script_calls(client)
        results, cost = await stream_client.measure_many(resources)
        after_calls = await _script_calls(client)
        await stream_client.aclose()
    finally:
        await client.aclose()
    assert (cost, after_calls - before) == (1, 1)
    for number, trigger in enumerate(triggers):
        outcome = results[trigger.resource]
        assert isinstance(outcome, Measurement), outcome
        if trigger.measures_age:
            assert trigger.evaluate(outcome).value >= 0
        else:
            assert trigger.evaluate(outcome).value == expected[number]
    missing_pending, missing_lag, missing_group, a_list = (results[t.resource] for t in odd)
    assert isinstance(missing_pending, TargetNotFound)
    assert isinstance(missing_lag, Measurement)
    assert odd[1].evaluate(missing_lag) == Evaluation(0.0, False)
    assert isinstance(missing_group, TargetNotFound)
    assert isinstance(a_list, UnsupportedResource)
    assert "is a list, not a stream" in str(a_list)


async def test_stream_is_active_pushes_on_undelivered_entries_and_skips_a_missing_stream(
    serve, redis_client, unique_key, streams
) -> None:
    key, missing = unique_key("push"), unique_key("push-missing")
    await redis_client.xgroup_create(key, GROUP, "$", mkstream=True)
    lag = streams(key, consumerGroup=GROUP, lagCount="5")
    pending_missing = streams(missing, consumerGroup=GROUP)  # NOT_FOUND, in the same batch
    running = await serve()
    broken = StreamReader(running.stub.StreamIsActive(ref(pending_missing)))
    stream = StreamReader(running.stub.StreamIsActive(ref(lag)))
    assert await stream.next() is False  # the initial state at once: nothing undelivered
    await redis_client.xadd(key, {"job": "1"})
    assert await stream.next() is True  # lag 1 > activationLagCount 0
    assert await broken.nothing_for(0.1)  # a read that fails stays silent
    stream.cancel()
    broken.cancel()


async def test_bad_stream_metadata_is_one_invalid_argument_naming_every_key(serve) -> None:
    running = await serve()
    metadata = {
        "backend": "redis-streams",
        "address": "localhost",
        "consumerGroup": GROUP,
        "lagCount": "0",
        "activationLagCount": "-1",
        "mode": "OldestPendingAge",
        "password": "pw-stream-never-shown",
    }
    code, details = await status(running.stub.GetMetricSpec(ref(metadata)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for key in ("address", "stream", "lagCount", "activationLagCount", "value"):
        assert key in details
    assert "pw-stream-never-shown" not in details
