"""Shared, batched watchers on real brokers: one batch per connection, bounded broker load,
streams that survive restarts; not timed beyond generous bounds."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ref
from tests.integration.kafka_fixtures import commit, produce
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


async def _evalsha_calls(redis_client) -> int:
    stats = await redis_client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_many_streams_on_many_lists_share_one_batch_within_the_request_budget(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    keys = [unique_key(f"watched-{i}") for i in range(10)]
    running = await serve(watch_intervals=(("redis", 0.025),), watch_max_requests=40.0)
    streams = {
        key: [
            StreamReader(
                running.stub.StreamIsActive(ref(redis_metadata(key), name=f"so-{key}-{n}"))
            )
            for n in range(5)
        ]
        for key in keys
    }
    for readers in streams.values():
        for reader in readers:
            assert await reader.next() is False
    assert len(running.app.hub) == 10  # one watcher per list, not per stream
    assert running.app.hub.batches == 1  # one batch for the connection
    before = await _evalsha_calls(redis_client)
    await asyncio.sleep(1.0)
    calls = await _evalsha_calls(redis_client) - before
    # one script call per batch for all 10 lists; the budget is 40 requests/s per connection
    assert 10 <= calls <= 45, calls
    await redis_client.lpush(keys[3], "job")
    for reader in streams[keys[3]]:
        assert await reader.next() is True
    for key in keys[:3]:
        for reader in streams[key]:
            assert await reader.nothing_for(0.05)
    for readers in streams.values():
        for reader in readers:
            reader.cancel()
    for _ in range(100):
        if len(running.app.hub) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(running.app.hub) == 0
    assert running.app.hub.batches == 0


async def test_stream_survives_a_redis_restart_and_reports_the_next_activation(
    serve, own_redis, unique_key
) -> None:
    import redis.asyncio as aioredis

    key = unique_key("restart")
    metadata = {"backend": "redis", "address": own_redis.address, "listName": key}
    running = await serve(backend_timeout=0.5)
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is False
    await own_redis.stop()
    assert await stream.nothing_for(1.0)  # silent during the outage, never a false
    await own_redis.start()
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        await client.rpush(key, "after-restart")
        assert await stream.next(timeout=5) is True
        await client.rpush(key, "more")
        assert await stream.nothing_for(0.3)  # repeated activity sends nothing
    finally:
        await client.aclose()
    stream.cancel()


async def test_stream_pushes_true_when_in_flight_work_appears_on_an_idle_queue(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    wait, processing = unique_key("idle"), unique_key("idle-processing")
    metadata = redis_metadata(wait, processingListName=processing, activeWhileInFlight="true")
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is False  # nothing waits, nothing runs
    await redis_client.lpush(processing, "job-taken-by-a-worker")
    assert await stream.next() is True
    assert await redis_client.llen(wait) == 0  # still nothing waits: the work in flight did it
    stream.cancel()


async def test_age_and_processing_lists_share_one_script_call_per_batch(serve, own_redis) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    age = {"mode": "OldestAge", "value": "30", "timestampField": "enqueued_at"}
    metadatas = [
        own_redis.metadata("plain"),
        own_redis.metadata("sidekiq", **age),
        own_redis.metadata(
            "bull:q:wait",
            **{**age, "timestampField": "timestamp"},
            timestampHashKey="bull:q:{}",
            processingListName="bull:q:active",
            activeWhileInFlight="true",
        ),
        own_redis.metadata("work", processingListName="work:processing"),
    ]
    running = await serve(watch_intervals=(("redis", 0.025),), watch_max_requests=40.0)
    streams = [StreamReader(running.stub.StreamIsActive(ref(m))) for m in metadatas]
    try:
        for stream in streams:
            assert await stream.next() is False
        assert len(running.app.hub) == 4
        assert running.app.hub.batches == 1
        reads = "keda_queue_scaler_backend_request_duration_seconds_count"
        labels = {"backend": "redis", "outcome": "ok"}
        before, batches = await _evalsha_calls(client), running.sample(reads, labels)
        await asyncio.sleep(1.0)
        calls, batches = (
            await _evalsha_calls(client) - before,
            running.sample(reads, labels) - batches,
        )
        # every batch read the four resources with one script call, within the budget
        assert 10 <= calls <= 45, calls
        assert abs(calls - batches) <= 1, (calls, batches)  # a batch may be in flight
        await client.lpush("bull:q:active", "1")
        assert await streams[2].next() is True
        assert await streams[1].nothing_for(0.05)
    finally:
        for stream in streams:
            stream.cancel()
        await client.aclose()


async def test_kafka_topics_of_one_connection_are_watched_in_one_batch(
    serve, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topics = [kafka_topic(partitions=2) for _ in range(3)]
    group = kafka_group()
    await asyncio.to_thread(
        commit, kafka_bootstrap, group, {(t, p): 0 for t in topics for p in (0, 1)}
    )
    running = await serve(backend_timeout=5.0)
    streams = [
        StreamReader(
            running.stub.StreamIsActive(
                ref(
                    {
                        "backend": "kafka",
                        "bootstrapServers": kafka_bootstrap,
                        "consumerGroup": group,
                        "topic": t,
                    }
                )
            )
        )
        for t in topics
    ]
    for stream in streams:
        assert await stream.next() is False
    assert running.app.hub.batches == 1
    await asyncio.to_thread(produce, kafka_bootstrap, topics[1], 1, 3)
    assert await streams[1].next(timeout=5) is True
    assert await streams[0].nothing_for(0.3)
    assert await streams[2].nothing_for(0.0)
    for stream in streams:
        stream.cancel()


@pytest.mark.parametrize("protocol", ["amqp", "http"])
async def test_rabbitmq_queues_are_watched_and_activate(
    serve, rabbit_queue, rabbitmq_metadata, amqp_peer, protocol
) -> None:
    queues = [await rabbit_queue() for _ in range(3)]
    running = await serve(backend_timeout=3.0)
    streams = [
        StreamReader(running.stub.StreamIsActive(ref(rabbitmq_metadata(q, protocol))))
        for q in queues
    ]
    for stream in streams:
        assert await stream.next() is False
    assert running.app.hub.batches == 1
    await amqp_peer.publish(queues[2], 1)
    # the management API refreshes its counts every collect_statistics_interval (1 s here)
    assert await streams[2].next(timeout=8) is True
    assert await streams[0].nothing_for(0.2)
    for stream in streams:
        stream.cancel()


async def test_rabbitmq_stream_pushes_true_when_work_in_flight_appears_on_an_idle_queue(
    serve, rabbit_queue, rabbitmq_metadata, rabbitmq_api, amqp_peer
) -> None:
    queue = await rabbit_queue()
    running = await serve(backend_timeout=3.0)
    # ready messages alone never activate these (1 is not > activationValue 1): only the
    # message in work can
    options = {"mode": "QueueLength", "value": "5", "activationValue": "1"}
    options["excludeUnacknowledged"] = "true"
    keyed = StreamReader(
        running.stub.StreamIsActive(
            ref(rabbitmq_metadata(queue, "http", activeWhileInFlight="true", **options))
        )
    )
    plain = StreamReader(
        running.stub.StreamIsActive(ref(rabbitmq_metadata(queue, "http", **options), name="b"))
    )
    assert await keyed.next() is False
    assert await plain.next() is False
    await amqp_peer.publish(queue, 1)
    held = await amqp_peer.take(queue, 1)  # a consumer takes it and does not acknowledge it
    await rabbitmq_api.settled(queue, messages_ready=0, messages_unacknowledged=1)
    # the management API refreshes its counts every collect_statistics_interval (1 s here)
    assert await keyed.next(timeout=8) is True
    assert await plain.nothing_for(0.5)  # KEDA's behaviour without the key: still idle
    await held.ack(1)
    keyed.cancel()
    plain.cancel()
