"""``mode: LagSeconds`` against a real Apache Kafka broker: the ages are those of the records the
tests produced (their timestamps, as the broker acknowledged them), at the offsets Kafka itself
reports (committed offsets, log start and end), and the reads cost what the docs say."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from scaler.backends.base import OLDEST_AGE, Measurement
from scaler.backends.kafka.client import KafkaClient
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.kafka_fixtures import (
    age_of,
    ago,
    commit,
    committed,
    end_offsets,
    kafka_metadata,
    produce_at,
)

pytestmark = pytest.mark.integration

#: how far a measured age may be from the record's timestamp against this test's clock
WITHIN = 1.0


def ages(bootstrap: str, group: str, topic: str | None, **extra: str) -> dict[str, str]:
    """LagSeconds trigger metadata, target 30 s unless ``extra`` says otherwise."""
    return kafka_metadata(bootstrap, group, topic, **{"mode": "LagSeconds", "value": "30", **extra})


async def measured(running: Any, metadata: dict[str, str]) -> Measurement:
    engine = running.app.engine
    return await engine.measure(engine.parse(metadata))  # type: ignore[no-any-return]


async def metric(running: Any, metadata: dict[str, str]) -> float:
    reply = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
    )
    return float(reply.metricValues[0].metricValueFloat)


async def active(running: Any, metadata: dict[str, str]) -> bool:
    return bool((await running.stub.IsActive(ref(metadata))).result)


def by_partition(measurement: Measurement) -> dict[int, dict[str, float | str]]:
    return {int(item["partition"]): dict(item) for item in measurement.items}


def log_start(bootstrap: str, topic: str, partition: int) -> int:
    """The broker's log-start offset, read by a fresh kafka-python consumer (not our code)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="kqs-tests")
    try:
        tp = TopicPartition(topic, partition)
        return int(consumer.beginning_offsets([tp], timeout_ms=15_000)[tp])
    finally:
        consumer.close(autocommit=False)


@contextmanager
def broker_requests(running: Any, metadata: dict[str, str]) -> Iterator[Counter[str]]:
    """Counts, by API, the requests the Kafka client of ``metadata``'s connection sends (it must
    have connected already), as bench/kafka_lag.py does: around kafka-python's own send."""
    engine = running.app.engine
    client = engine.pool.get(engine.parse(metadata).key.connection)
    assert isinstance(client, KafkaClient)
    manager = client._admin._manager  # type: ignore[union-attr]
    counts: Counter[str] = Counter()
    send = manager.send

    async def counting(request: Any, *args: Any, **kwargs: Any) -> Any:
        counts[type(request).__name__.removesuffix("Request")] += 1
        return await send(request, *args, **kwargs)

    manager.send = counting
    try:
        yield counts
    finally:
        manager.send = send


async def test_the_age_of_the_oldest_unconsumed_record_then_the_next_oldest(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=3), kafka_group()
    produced = {
        0: await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(120), ago(90)]),
        1: await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 1, [ago(30), ago(20)]),
        2: await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 2, [ago(5)]),
    }
    # partition 0 consumed its first record: the oldest unconsumed is the one of 90 s ago
    await asyncio.to_thread(
        commit, kafka_bootstrap, group, {(topic, 0): 1, (topic, 1): 0, (topic, 2): 0}
    )
    offsets = await asyncio.to_thread(committed, kafka_bootstrap, group)
    assert offsets == {(topic, 0): 1, (topic, 1): 0, (topic, 2): 0}
    waiting = {p: produced[p][offsets[(topic, p)]] for p in produced}  # (offset, timestamp)
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = ages(kafka_bootstrap, group, topic)

    value = await metric(running, metadata)
    assert abs(value - age_of(waiting[0][1])) < WITHIN
    assert await active(running, metadata)
    items = by_partition(await measured(running, metadata))
    for partition, (offset, timestamp) in waiting.items():
        item = items[partition]
        assert (item["record_offset"], item["timestamp_ms"]) == (offset, timestamp)
        assert item["timestamp_type"] == "CreateTime"
        assert abs(float(item["age_seconds"]) - age_of(timestamp)) < WITHIN
    gauge = {"backend": "kafka", "resource": f"{kafka_bootstrap}/{group}/{topic}"}
    assert abs(running.sample("keda_queue_scaler_oldest_age_seconds", gauge) - value) < WITHIN
    # the same group without topic reads the same partitions
    assert abs(await metric(running, ages(kafka_bootstrap, group, None)) - value) < WITHIN

    # partition 0 consumed to its end: the next oldest is partition 1's record of 30 s ago
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 2})
    assert (await asyncio.to_thread(end_offsets, kafka_bootstrap, topic))[(topic, 0)] == 2
    measurement = await measured(running, metadata)
    assert abs(float(measurement.facts[OLDEST_AGE]) - age_of(waiting[1][1])) < WITHIN
    assert measurement.facts["oldest_partition"] == f"{topic}/1"
    assert by_partition(measurement)[0]["age_seconds"] == 0.0
    assert abs(await metric(running, metadata) - age_of(waiting[1][1])) < WITHIN
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs[0]
    assert (spec.metricName, spec.targetSizeFloat) == (f"kafka-{topic}", 30.0)


async def test_records_deleted_past_the_commit_give_the_first_that_exists(
    serve, kafka_bootstrap, kafka_admin, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(), kafka_group()
    produced = await asyncio.to_thread(
        produce_at, kafka_bootstrap, topic, 0, [ago(s) for s in (100, 90, 80, 70, 60, 50)]
    )
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 1})
    await asyncio.to_thread(kafka_admin.delete_records, {TopicPartition(topic, 0): 4})
    start = await asyncio.to_thread(log_start, kafka_bootstrap, topic, 0)
    assert start == 4  # Kafka's view: the committed offset 1 is below the log start
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)

    item = by_partition(await measured(running, ages(kafka_bootstrap, group, topic)))[0]

    assert (int(item["record_offset"]), int(item["timestamp_ms"])) == produced[start]
    assert abs(float(item["age_seconds"]) - age_of(produced[start][1])) < WITHIN
    assert "offsets 1 to 3 are gone" in str(item["age_note"])
    assert "the first record that exists is used" in str(item["age_note"])


async def test_log_append_time_is_the_brokers_clock_not_the_producers(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic = kafka_topic(configs={"message.timestamp.type": "LogAppendTime"})
    group = kafka_group()
    produced = await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(90)])
    appended = produced[0][1]  # the broker's append time, as it acknowledged the record
    assert age_of(appended) < 10  # not the producer's 90 s ago
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)

    item = by_partition(await measured(running, ages(kafka_bootstrap, group, topic)))[0]

    assert (item["timestamp_type"], item["timestamp_ms"]) == ("LogAppendTime", appended)
    assert abs(float(item["age_seconds"]) - age_of(appended)) < WITHIN


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_compressed_batches_are_read(
    serve, kafka_bootstrap, kafka_topic, kafka_group, codec: str
) -> None:
    # producers compress by default in many setups: each codec kafka-python can read is installed
    topic = kafka_topic()
    group = kafka_group()
    stamp = ago(75)
    await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [stamp], compression=codec)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)

    item = by_partition(await measured(running, ages(kafka_bootstrap, group, topic)))[0]

    assert item["timestamp_ms"] == stamp
    assert abs(float(item["age_seconds"]) - age_of(stamp)) < WITHIN


async def test_a_timestamp_in_the_future_counts_zero_and_is_reported(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(), kafka_group()
    ahead = int((time.time() + 60) * 1000)
    await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ahead])
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = ages(kafka_bootstrap, group, topic)

    item = by_partition(await measured(running, metadata))[0]

    assert (item["age_seconds"], item["timestamp_ms"]) == (0.0, ahead)
    assert abs(float(item["future_seconds"]) - (ahead / 1000 - time.time())) < WITHIN
    assert "(CreateTime, the producer's clock)" in str(item["age_note"])
    assert await metric(running, metadata) == 0.0
    assert not await active(running, metadata)


async def test_transaction_markers_lead_to_the_next_data_record(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(), kafka_group()
    produced = await asyncio.to_thread(
        produce_at, kafka_bootstrap, topic, 0, [ago(40)], transactional=True
    )
    assert produced[0][0] == 0
    # the commit marker took offset 1: lag 1 (as KEDA counts it), but no record waits
    assert (await asyncio.to_thread(end_offsets, kafka_bootstrap, topic))[(topic, 0)] == 2
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 1})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = ages(kafka_bootstrap, group, topic)
    item = by_partition(await measured(running, metadata))[0]
    assert item["age_seconds"] == 0.0
    assert "1 transaction marker(s) skipped" in str(item["age_note"])
    assert "no data record from offset 1 to the log end (2)" in str(item["age_note"])
    assert await metric(running, kafka_metadata(kafka_bootstrap, group, topic)) == 1  # mode Lag

    later = await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(20)])
    item = by_partition(await measured(running, metadata))[0]
    assert later[0][0] == 2  # after the record and the marker
    assert (int(item["record_offset"]), int(item["timestamp_ms"])) == later[0]
    assert abs(float(item["age_seconds"]) - age_of(later[0][1])) < WITHIN


@pytest.mark.parametrize(
    ("policy", "zero"), [("earliest", "false"), ("earliest", "true"), ("latest", "false")]
)
async def test_uncommitted_partitions_follow_the_reset_policy(
    serve, kafka_bootstrap, kafka_admin, kafka_topic, kafka_group, policy, zero
) -> None:
    topic = kafka_topic()
    produced = await asyncio.to_thread(
        produce_at, kafka_bootstrap, topic, 0, [ago(50), ago(40), ago(30)]
    )
    await asyncio.to_thread(kafka_admin.delete_records, {TopicPartition(topic, 0): 1})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = ages(
        kafka_bootstrap,
        kafka_group(),
        topic,
        offsetResetPolicy=policy,
        scaleToZeroOnInvalidOffset=zero,
    )

    value = await metric(running, metadata)
    item = by_partition(await measured(running, metadata))[0]

    if policy == "earliest":
        # a new consumer starts at the log start: the record of 40 s ago waits for it
        assert (int(item["record_offset"]), int(item["timestamp_ms"])) == produced[1]
        assert abs(float(item["age_seconds"]) - age_of(produced[1][1])) < WITHIN
        assert "earliest a new consumer starts at the log start (1)" in str(item["age_note"])
    else:
        assert item["age_seconds"] == 0.0
        assert "latest a new consumer starts at the log end" in str(item["age_note"])
    expected = float(item["age_seconds"]) if zero == "false" else 0.0
    assert abs(value - expected) < WITHIN
    assert await active(running, metadata) is (expected > 0)


async def test_a_record_batch_beyond_the_first_fetch_limit_is_read_whole(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    # partition 0 comes first in the Fetch, so the broker owes only it a whole batch whatever
    # its size; partition 1's 20 KB record exceeds the first 4 KiB and needs a second Fetch
    small = await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(10)])
    big = await asyncio.to_thread(
        produce_at, kafka_bootstrap, topic, 1, [ago(70)], value=b"x" * 20_000
    )
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0, (topic, 1): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    metadata = ages(kafka_bootstrap, group, topic)
    await measured(running, kafka_metadata(kafka_bootstrap, group, topic))  # connects

    with broker_requests(running, metadata) as requests:
        items = by_partition(await measured(running, metadata))

    assert (items[0]["timestamp_ms"], items[1]["timestamp_ms"]) == (small[0][1], big[0][1])
    assert abs(float(items[1]["age_seconds"]) - age_of(big[0][1])) < WITHIN
    assert requests["Fetch"] == 2
    assert requests["ListOffsets"] == 1


async def test_200_scaled_objects_on_the_group_cost_one_batched_read(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=4), kafka_group()
    for partition in range(4):
        await asyncio.to_thread(
            produce_at, kafka_bootstrap, topic, partition, [ago(60 - 10 * partition), ago(5)]
        )
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, p): 0 for p in range(4)})
    running = await serve(cache_ttl=5.0, backend_timeout=5.0)
    lag = kafka_metadata(kafka_bootstrap, group, topic)
    assert await metric(running, lag) == 8  # mode Lag on the group: connects, and is its own read
    variants = [
        ages(kafka_bootstrap, group, topic, value=str(5 + i), activationValue=str(i % 90))
        for i in range(200)
    ]
    reads = "keda_queue_scaler_backend_request_duration_seconds_count"
    before = running.sample(reads, {"backend": "kafka", "outcome": "ok"})

    with broker_requests(running, lag) as requests:
        values = await asyncio.gather(*(metric(running, v) for v in variants))
        activity = await asyncio.gather(*(active(running, v) for v in variants))

    assert running.sample(reads, {"backend": "kafka", "outcome": "ok"}) - before == 1
    # one OffsetFetch, one ListOffsets and one Fetch for the single leader; Metadata twice (the
    # partitions, and kafka-python's leader lookup before ListOffsets)
    assert dict(requests) == {"Metadata": 2, "OffsetFetch": 1, "ListOffsets": 1, "Fetch": 1}
    assert len(set(values)) == 1
    assert abs(values[0] - 60) < 2
    assert activity == [values[0] > i % 90 for i in range(200)]


async def test_lag_and_ages_on_one_group_never_share_a_read_without_ages(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(), kafka_group()
    produced = await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(45), ago(1)])
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    running = await serve(cache_ttl=60.0, backend_timeout=5.0)
    lag, aged = kafka_metadata(kafka_bootstrap, group, topic), ages(kafka_bootstrap, group, topic)
    assert await metric(running, lag) == 2  # read and cached first, without ages
    assert abs(await metric(running, aged) - age_of(produced[0][1])) < WITHIN
    # the watchers' batch: both on one connection, offsets read once, records fetched once
    engine = running.app.engine
    with broker_requests(running, lag) as requests:
        results, _ = await engine.measure_batch([engine.parse(lag), engine.parse(aged)])
    assert requests["OffsetFetch"] == 1
    assert requests["Fetch"] == 1
    without, with_ages = results.values()
    assert isinstance(without, Measurement)
    assert isinstance(with_ages, Measurement)
    assert OLDEST_AGE not in without.facts
    assert abs(float(with_ages.facts[OLDEST_AGE]) - age_of(produced[0][1])) < WITHIN
