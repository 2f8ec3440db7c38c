"""Activation lanes: one queue per lane with one stream on it, per backend kind.

``enqueue`` makes a lane's queue non-empty (its stream should send ``true``), ``drain`` empties
it again. :func:`open_lanes` creates the queues (topics and groups for Kafka) and says where
the broker's request count comes from; :attr:`LaneSet.cleanup` deletes them. :func:`run_lane`
drives one lane: activate, time the stream's ``true``, drain, wait for ``false``, repeat.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aio_pika
import aio_pika.abc
import httpx
import redis.asyncio as aioredis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from bench.harness.broker_counts import rabbitmq_counters
from bench.harness.brokers import BrokerAddresses
from bench.keda_load.objects import NAMESPACE
from bench.keda_load.redis_broker import RedisBroker
from scaler.proto import externalscaler_pb2 as pb

#: the backend kinds of the activation scenario (RabbitMQ read over AMQP and over HTTP)
BACKENDS = ("redis", "rabbitmq-amqp", "rabbitmq-http", "kafka")


class Lane(Protocol):
    """One queue with one stream on it; enqueue makes it non-empty, drain empties it."""

    metadata: dict[str, str]

    async def enqueue(self) -> None: ...

    async def drain(self) -> None: ...


@dataclass
class RedisLane:
    redis: aioredis.Redis
    key: str
    metadata: dict[str, str]

    async def enqueue(self) -> None:
        await self.redis.lpush(self.key, "job")

    async def drain(self) -> None:
        await self.redis.delete(self.key)


@dataclass
class RabbitLane:
    channel: aio_pika.abc.AbstractChannel
    queue: aio_pika.abc.AbstractQueue
    metadata: dict[str, str]

    async def enqueue(self) -> None:
        await self.channel.default_exchange.publish(
            aio_pika.Message(b"job"), routing_key=self.queue.name
        )

    async def drain(self) -> None:
        await self.queue.purge()


@dataclass
class KafkaLane:
    producer: Any  # kafka.KafkaProducer (untyped)
    admin: Any  # kafka.KafkaAdminClient (untyped)
    topic: str
    group: str
    metadata: dict[str, str]
    end: int = 0

    async def enqueue(self) -> None:
        record = await asyncio.to_thread(lambda: self.producer.send(self.topic, b"job").get(10))
        self.end = int(record.offset) + 1

    async def drain(self) -> None:
        await asyncio.to_thread(self._commit, self.end)

    def _commit(self, offset: int) -> None:
        self.admin.alter_group_offsets(
            self.group, {TopicPartition(self.topic, 0): OffsetAndMetadata(offset, "", -1)}
        )


@dataclass
class LaneSet:
    """The lanes of one backend kind, how to remove them, and the broker's counters if any.

    :param source: where the broker request figure comes from, for the report
    """

    lanes: list[Lane]
    cleanup: Callable[[], Awaitable[None]]
    counters: Callable[[], Awaitable[dict[str, float]]] | None = None
    source: str = ""


async def open_lanes(
    backend: str, redis: RedisBroker, brokers: BrokerAddresses, count: int, tag: str
) -> LaneSet:
    """``count`` lanes of ``backend`` (one of :data:`BACKENDS`), named after ``tag``."""
    if backend == "redis":
        return await redis_lanes(redis, count, tag)
    if backend == "rabbitmq-amqp":
        return await rabbit_lanes(brokers, count, tag, "amqp")
    if backend == "rabbitmq-http":
        return await rabbit_lanes(brokers, count, tag, "http")
    if backend == "kafka":
        return await kafka_lanes(brokers, count, tag)
    raise ValueError(f"unknown backend {backend}")


async def redis_lanes(redis: RedisBroker, count: int, tag: str) -> LaneSet:
    keys = [f"{tag}-act-{i}" for i in range(count)]
    await redis.drop(keys)
    lanes: list[Lane] = [
        RedisLane(
            redis.redis,
            key,
            {
                "backend": "redis",
                "address": redis.address,
                "listName": key,
                "listLength": "1",
                "activationListLength": "0",
            },
        )
        for key in keys
    ]

    async def cleanup() -> None:
        await redis.drop(keys)

    return LaneSet(lanes, cleanup, source="Redis INFO commandstats (scaler's top-level commands)")


async def rabbit_lanes(brokers: BrokerAddresses, count: int, tag: str, protocol: str) -> LaneSet:
    connection = await aio_pika.connect(brokers.amqp)
    channel = await connection.channel()
    queues = [await channel.declare_queue(f"{tag}-{protocol}-{i}") for i in range(count)]
    host = brokers.amqp if protocol == "amqp" else brokers.rabbit_http
    lanes: list[Lane] = [
        RabbitLane(
            channel,
            queue,
            {
                "backend": "rabbitmq",
                "host": host,
                "queueName": queue.name,
                "mode": "QueueLength",
                "value": "1",
                "activationValue": "0",
            },
        )
        for queue in queues
    ]
    http = httpx.AsyncClient(timeout=10.0)

    async def cleanup() -> None:
        try:
            for queue in queues:
                await queue.delete(if_unused=False, if_empty=False)
        finally:
            await connection.close()
            await http.aclose()

    async def counters() -> dict[str, float]:
        return await rabbitmq_counters(brokers.rabbit_prometheus, http)

    if protocol == "amqp":
        source = (
            "RabbitMQ Prometheus rabbitmq_channels_opened_total (whole node) and the scaler's reads"
        )
        return LaneSet(lanes, cleanup, counters, source)
    source = "the scaler's own read counter (RabbitMQ does not count management API requests)"
    return LaneSet(lanes, cleanup, None, source)


async def kafka_lanes(brokers: BrokerAddresses, count: int, tag: str) -> LaneSet:
    topics = [f"{tag}-t{i}" for i in range(count)]
    groups = [f"{tag}-g{i}" for i in range(count)]

    def prepare() -> tuple[Any, list[Any]]:
        admin = KafkaAdminClient(bootstrap_servers=brokers.kafka, request_timeout_ms=30_000)
        admin.create_topics(
            {t: {"num_partitions": 1, "replication_factor": 1} for t in topics},
            timeout_ms=30_000,
            wait_for_metadata=True,
        )
        admin.close()
        producer = KafkaProducer(bootstrap_servers=brokers.kafka, linger_ms=0, acks=1)
        admins = [KafkaAdminClient(bootstrap_servers=brokers.kafka) for _ in topics]
        return producer, admins

    producer, admins = await asyncio.to_thread(prepare)
    lanes = [
        KafkaLane(
            producer,
            admins[i],
            topics[i],
            groups[i],
            {
                "backend": "kafka",
                "bootstrapServers": brokers.kafka,
                "consumerGroup": groups[i],
                "topic": topics[i],
                "lagThreshold": "1",
                "activationLagThreshold": "0",
            },
        )
        for i in range(count)
    ]
    # the group has committed offsets (at the log end, 0) before its stream opens: lag 0
    await asyncio.gather(*(lane.drain() for lane in lanes))

    def teardown() -> None:
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=brokers.kafka)
        try:
            admin.delete_groups(groups)
            admin.delete_topics(topics)
        finally:
            admin.close()
            for lane_admin in admins:
                lane_admin.close()

    async def cleanup() -> None:
        await asyncio.to_thread(teardown)

    return LaneSet(
        list(lanes),
        cleanup,
        source="the scaler's own read counter x 4: a batched read of the watched groups is one "
        "Metadata (topics), one OffsetFetch (every group), one Metadata + one ListOffsets "
        "(leaders); the broker has no request metrics without JMX",
    )


class StreamReader:
    """Reads one StreamIsActive stream; each message is stamped when it arrives."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.messages: asyncio.Queue[tuple[float, bool]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for message in self.call:
            self.messages.put_nowait((time.perf_counter(), bool(message.result)))

    async def next(self, within: float) -> tuple[float, bool]:
        """(arrival time, value) of the next message; an error if the stream ends first."""
        getter = asyncio.ensure_future(self.messages.get())
        done, _ = await asyncio.wait(
            {getter, self.task}, timeout=within, return_when="FIRST_COMPLETED"
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            code = await self.call.code()
            raise RuntimeError(f"stream ended with {code.name}: {await self.call.details()}")
        raise TimeoutError(f"no stream message within {within:g}s")

    def stale(self) -> int:
        """Drop the messages waiting; how many there were."""
        n = 0
        while not self.messages.empty():
            self.messages.get_nowait()
            n += 1
        return n

    def cancel(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def run_lane(
    lane: Lane,
    stub: Any,
    activations: int,
    interval: float,
    latencies: list[float],
    anomalies: list[str],
) -> None:
    """Open the lane's stream and activate its queue ``activations`` times."""
    ref = pb.ScaledObjectRef(name="activation", namespace=NAMESPACE, scalerMetadata=lane.metadata)
    reader = StreamReader(stub.StreamIsActive(ref))
    try:
        # HTTP statistics of a new queue take up to a second; the stream stays silent until then
        _, initial = await reader.next(30)
        if initial:
            raise RuntimeError(f"initial state of an empty queue is true ({lane.metadata})")
        for _ in range(activations):
            # start at a random phase of the watch interval, so latencies sample all of it
            await asyncio.sleep(0.01 + random.uniform(0, interval))
            if reader.stale():
                anomalies.append("unexpected stream message between activations")
            start = time.perf_counter()
            await lane.enqueue()
            arrived, value = await reader.next(30)
            if not value:
                raise RuntimeError("stream sent false after an enqueue")
            latencies.append(arrived - start)
            await lane.drain()
            deadline = time.monotonic() + 30
            while (await stub.IsActive(ref, timeout=3)).result:
                if time.monotonic() > deadline:
                    raise RuntimeError("IsActive still true 30 s after draining")
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()
