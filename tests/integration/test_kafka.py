"""The kafka backend against a real Apache Kafka broker, compared with Kafka's own offsets."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from kafka import TopicPartition

from scaler.backends.kafka import ConsumerLag
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.kafka_fixtures import (
    commit,
    committed,
    end_offsets,
    kafka_metadata,
    produce,
)
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


async def metric(running, metadata: dict[str, str]) -> float:
    reply = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
    )
    return float(reply.metricValues[0].metricValueFloat)


async def active(running, metadata: dict[str, str]) -> bool:
    return bool((await running.stub.IsActive(ref(metadata))).result)


async def independent_lag(
    bootstrap: str, group: str, topics: list[str]
) -> dict[tuple[str, int], int]:
    """Log-end minus committed per partition, read by kafka-python's consumer, not by our code."""
    ends = await asyncio.to_thread(end_offsets, bootstrap, topics)
    commits = await asyncio.to_thread(committed, bootstrap, group, list(ends))
    return {tp: max(ends[tp] - commits[tp], 0) for tp in ends if commits.get(tp, -1) >= 0}


async def test_lag_equals_kafkas_own_offsets_per_partition_and_in_total(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic = kafka_topic(partitions=3)
    group = kafka_group()
    for partition, count in ((0, 40), (1, 25), (2, 7)):
        await asyncio.to_thread(produce, kafka_bootstrap, topic, partition, count)
    await asyncio.to_thread(
        commit, kafka_bootstrap, group, {(topic, 0): 10, (topic, 1): 25, (topic, 2): 3}
    )
    expected = await independent_lag(kafka_bootstrap, group, [topic])
    assert expected == {(topic, 0): 30, (topic, 1): 0, (topic, 2): 4}
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = kafka_metadata(
        kafka_bootstrap, group, topic, lagThreshold="5", allowIdleConsumers="true"
    )
    assert await metric(running, metadata) == sum(expected.values())
    assert await active(running, metadata)
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs[0]
    assert (spec.metricName, spec.targetSize) == (f"kafka-{topic}", 5)
    # per partition, as measured (the raw facts every trigger on this group and topic shares)
    parsed = running.app.engine.parse(metadata)
    measurement = await running.app.engine.measure(parsed)
    per_partition = {
        (str(p["topic"]), int(p["partition"])): int(p["log_end"]) - int(p["committed"])
        for p in measurement.items
    }
    assert per_partition == expected


async def test_topicless_mode_covers_every_topic_the_group_committed_on(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    first, second, untouched = (
        kafka_topic(partitions=2),
        kafka_topic(partitions=1),
        kafka_topic(partitions=1),
    )
    group = kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, first, 0, 12)
    await asyncio.to_thread(produce, kafka_bootstrap, first, 1, 5)
    await asyncio.to_thread(produce, kafka_bootstrap, second, 0, 9)
    await asyncio.to_thread(produce, kafka_bootstrap, untouched, 0, 100)
    await asyncio.to_thread(
        commit, kafka_bootstrap, group, {(first, 0): 2, (first, 1): 5, (second, 0): 1}
    )
    expected = await independent_lag(kafka_bootstrap, group, [first, second])
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = kafka_metadata(kafka_bootstrap, group, allowIdleConsumers="true")
    assert await metric(running, metadata) == sum(expected.values()) == 10 + 0 + 8
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs[0]
    assert spec.metricName == f"kafka-{group}-topics"


async def test_group_that_never_committed_without_topic_is_an_error_not_every_topic(
    serve, kafka_bootstrap, kafka_group
) -> None:
    running = await serve(backend_timeout=5.0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref(kafka_metadata(kafka_bootstrap, kafka_group())))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "has no committed offsets" in (err.value.details() or "")


async def test_missing_topic_is_not_found(serve, kafka_bootstrap, kafka_group) -> None:
    running = await serve(backend_timeout=5.0)
    metadata = kafka_metadata(kafka_bootstrap, kafka_group(), "kqs-no-such-topic-7f3a")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "kqs-no-such-topic-7f3a" in (err.value.details() or "")


@pytest.mark.parametrize(
    ("policy", "zero", "expected"),
    [
        ("latest", "false", 2),
        ("latest", "true", 0),
        ("earliest", "false", (50 - 20) + 8),
        ("earliest", "true", 0),
    ],
)
async def test_uncommitted_partitions_and_a_moved_log_start(
    serve, kafka_bootstrap, kafka_admin, kafka_topic, kafka_group, policy, zero, expected
) -> None:
    topic = kafka_topic(partitions=2)
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 50)
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 1, 8)
    # retention-like deletion: log-start of partition 0 moves to 20 (earliest must not count it)
    await asyncio.to_thread(kafka_admin.delete_records, {TopicPartition(topic, 0): 20})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = kafka_metadata(
        kafka_bootstrap,
        kafka_group(),
        topic,
        offsetResetPolicy=policy,
        scaleToZeroOnInvalidOffset=zero,
        allowIdleConsumers="true",
    )
    assert await metric(running, metadata) == expected
    assert await active(running, metadata) is (expected > 0)


async def test_partition_options_on_a_real_topic(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic = kafka_topic(partitions=6)
    group = kafka_group()
    lags = {0: 35, 1: 0, 2: 4, 3: 0, 4: 0, 5: 1}
    for partition, lag in lags.items():
        await asyncio.to_thread(produce, kafka_bootstrap, topic, partition, 5 + lag)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, p): 5 for p in lags})
    assert await independent_lag(kafka_bootstrap, group, [topic]) == {
        (topic, p): lag for p, lag in lags.items()
    }
    running = await serve(cache_ttl=1.0, backend_timeout=5.0)

    def m(**extra: str) -> dict[str, str]:
        return kafka_metadata(kafka_bootstrap, group, topic, lagThreshold="10", **extra)

    assert await metric(running, m(allowIdleConsumers="true")) == 40
    assert await metric(running, m()) == 40  # 4 replicas' worth, under the 6-partition cap
    assert await metric(running, m(partitionLimitation="1-3", allowIdleConsumers="true")) == 4
    # three partitions have lag: at most 3 replicas
    assert await metric(running, m(limitToPartitionsWithLag="true")) == 30
    # 40 needs 4 replicas; 6 partitions divide evenly across 6: rounded up to 60
    assert await metric(running, m(ensureEvenDistributionOfPartitions="true")) == 60


async def test_persistent_lag_across_successive_evaluations(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic = kafka_topic(partitions=2)
    group = kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 20)
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 1, 20)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 5, (topic, 1): 5})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = kafka_metadata(
        kafka_bootstrap,
        group,
        topic,
        excludePersistentLag="true",
        persistentLagSeconds="1",
        allowIdleConsumers="true",
    )
    assert await metric(running, metadata) == 30  # first sighting counts in full
    await asyncio.sleep(1.2)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 6})  # partition 1 moves
    assert await metric(running, metadata) == 14  # partition 0 stuck at 5 for > 1 s: excluded
    assert await active(running, metadata)  # activity still counts it
    await asyncio.sleep(1.2)
    assert await metric(running, metadata) == 0  # both stuck now
    assert await active(running, metadata)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 20, (topic, 1): 20})
    assert await metric(running, metadata) == 0
    assert not await active(running, metadata)


async def test_one_read_serves_different_trigger_options(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic = kafka_topic(partitions=2)
    group = kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 30)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0, (topic, 1): 0})
    running = await serve(cache_ttl=5.0, backend_timeout=5.0)
    variants = [
        kafka_metadata(
            kafka_bootstrap, group, topic, lagThreshold=str(t), activationLagThreshold=str(a)
        )
        for t in (1, 5, 50)
        for a in (0, 29, 30)
    ]
    results = await asyncio.gather(*(active(running, v) for v in variants))
    assert results == [True, True, False] * 3
    assert (
        running.sample(
            "keda_queue_scaler_backend_request_duration_seconds_count",
            {"backend": "kafka", "outcome": "ok"},
        )
        == 1
    )


@pytest.mark.parametrize("mechanism", ["plaintext", "scram_sha512"])
async def test_sasl_logins_and_a_wrong_password(
    serve, kafka_bootstrap, kafka_sasl, kafka_topic, kafka_group, mechanism, caplog
) -> None:
    topic = kafka_topic(partitions=1)
    group = kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 6)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 1})
    user, password = (
        (kafka_sasl.plain_user, kafka_sasl.plain_password)
        if mechanism == "plaintext"
        else (kafka_sasl.scram_user, kafka_sasl.scram_password)
    )
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    good = kafka_metadata(
        kafka_sasl.bootstrap, group, topic, sasl=mechanism, username=user, passwordFromEnv=password
    )
    assert await metric(running, good) == 5
    wrong_password = "definitely-wrong-pw-9c1"
    bad = {**good, "passwordFromEnv": wrong_password}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref(bad))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong_password not in (err.value.details() or "")
    assert password not in (err.value.details() or "")
    assert wrong_password not in caplog.text


async def test_event_loop_keeps_serving_while_kafka_reads_block(
    serve, black_hole, redis_client, unique_key, redis_metadata
) -> None:
    key = unique_key("beside-kafka")
    await redis_client.rpush(key, "a", "b", "c")
    running = await serve(cache_ttl=0.0, backend_timeout=2.0)
    slow = asyncio.ensure_future(running.stub.IsActive(ref(kafka_metadata(black_hole, "g", "t"))))
    await asyncio.sleep(0.2)  # the Kafka read is now blocked in its thread
    durations = []
    for _ in range(10):
        start = time.perf_counter()
        reply = await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(redis_metadata(key)), metricName="")
        )
        durations.append(time.perf_counter() - start)
        assert reply.metricValues[0].metricValue == 3
    assert not slow.done()
    assert max(durations) < 0.05, durations
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await slow
    assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)


async def test_broker_down_errors_then_values_return_without_restart(
    serve, kafka_bootstrap, kafka_topic, kafka_group, kafka_broker_control
) -> None:
    topic = kafka_topic(partitions=2)
    group = kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 9)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 2, (topic, 1): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=3.0)
    metadata = kafka_metadata(kafka_bootstrap, group, topic, allowIdleConsumers="true")
    assert await metric(running, metadata) == 7
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is True
    await kafka_broker_control.stop()
    for call in (
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")),
        running.stub.IsActive(ref(metadata)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    await kafka_broker_control.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            value = await metric(running, metadata)
            break
        except grpc.aio.AioRpcError:
            assert time.monotonic() < deadline, "Kafka values did not come back"
            await asyncio.sleep(0.5)
    assert value == 7
    assert not stream.task.done()
    stream.cancel()


def test_resource_is_what_is_read() -> None:
    # thresholds and options are not part of the coalescing key; the reset policy decides a read
    assert ConsumerLag("g", "t") == ConsumerLag("g", "t", with_log_start=False)
    assert ConsumerLag("g", "t") != ConsumerLag("g", "t", with_log_start=True)
