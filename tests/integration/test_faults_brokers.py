"""Kafka and RabbitMQ paused (SIGSTOP: sockets open, nothing answers) and killed (SIGKILL):
errors within the backend timeout, never 0 or false; streams stay open; values return after."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import Running, ref
from tests.integration.conftest import broker_pid
from tests.integration.kafka_fixtures import commit, kafka_metadata, produce
from tests.streams import StreamReader

pytestmark = pytest.mark.integration

TIMEOUT = 1.0


async def _errors_in_time(running: Running, metadata: dict[str, str]) -> None:
    for call in (
        lambda: running.stub.IsActive(ref(metadata)),
        lambda: running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
        ),
    ):
        start = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call()
        assert err.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
        assert time.perf_counter() - start < TIMEOUT + 0.5


async def _value_returns(running: Running, metadata: dict[str, str], seconds: float) -> float:
    deadline = time.monotonic() + seconds
    while True:
        try:
            reply = await running.stub.GetMetrics(
                pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
            )
            return float(reply.metricValues[0].metricValueFloat)
        except grpc.aio.AioRpcError:
            assert time.monotonic() < deadline, "values did not come back"
            await asyncio.sleep(0.2)


async def _pause_and_resume(
    serve: Callable[..., Awaitable[Running]],
    metadata: dict[str, str],
    broker: str,
    expected: float,
    interval: float,
) -> None:
    """SIGSTOP the broker (sockets open, nothing answers): every RPC errors in time and the
    open stream stays silent; after SIGCONT the value returns and the stream is still open."""
    running = await serve(backend_timeout=TIMEOUT, cache_ttl=0.0)
    assert await _value_returns(running, metadata, 5) == expected
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is True
    pid = broker_pid(broker)
    os.kill(pid, signal.SIGSTOP)
    try:
        await _errors_in_time(running, metadata)
        assert await stream.nothing_for(0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await _value_returns(running, metadata, 2 * interval + 10) == expected
    assert not stream.task.done()
    stream.cancel()


async def test_kafka_paused_then_resumed(serve, kafka_bootstrap, kafka_topic, kafka_group) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 4)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 1, (topic, 1): 0})
    metadata = kafka_metadata(kafka_bootstrap, group, topic, allowIdleConsumers="true")
    await _pause_and_resume(serve, metadata, "kafka", 3, interval=0.2)


async def test_kafka_killed_then_restarted(
    serve, kafka_bootstrap, kafka_topic, kafka_group, kafka_broker_control
) -> None:
    topic, group = kafka_topic(partitions=1), kafka_group()
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    metadata = kafka_metadata(kafka_bootstrap, group, topic)
    running = await serve(backend_timeout=TIMEOUT, cache_ttl=0.0)
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is False
    os.kill(broker_pid("kafka"), signal.SIGKILL)
    await asyncio.sleep(0.5)
    await _errors_in_time(running, metadata)
    await kafka_broker_control.start()
    assert await _value_returns(running, metadata, 30) == 0
    await asyncio.to_thread(produce, kafka_bootstrap, topic, 0, 2)
    assert await stream.next(timeout=10) is True  # the open stream reports the next activation
    stream.cancel()


async def test_rabbitmq_paused_then_resumed(
    serve, rabbit_queue, rabbitmq_metadata, amqp_peer
) -> None:
    queue = await rabbit_queue()
    await amqp_peer.publish(queue, 3)
    metadata = rabbitmq_metadata(queue, "amqp")
    await _pause_and_resume(serve, metadata, "rabbitmq", 3, interval=0.05)
