"""SIGTERM during load: in-flight RPCs finish, streams end OK, broker connections are closed
(counted by Redis and RabbitMQ themselves; RabbitMQ logs the close as the client's own; Kafka
counts clients only over JMX, so the kernel's view of the broker's sockets stands in), and the
process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import grpc
import pytest

from bench.harness.ports import free_port
from bench.harness.scaler_process import scaler_process, wait_serving
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.conftest import ref
from tests.integration import sockets
from tests.integration.conftest import RUN_DIR, broker_pid
from tests.integration.kafka_fixtures import commit, kafka_metadata
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


async def _redis_clients(redis_client) -> int:
    clients = await redis_client.client_list()
    return sum(1 for c in clients if c.get("name") == "keda-queue-scaler")


async def test_sigterm_under_load(
    tmp_path: Path,
    redis_client,
    unique_key,
    redis_metadata,
    rabbit_user,
    rabbit_queue,
    rabbitmq_metadata,
    rabbitmq_api,
    kafka_bootstrap,
    kafka_topic,
    kafka_group,
) -> None:
    topic, group = kafka_topic(), kafka_group()
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    kafka = kafka_metadata(kafka_bootstrap, group, topic)
    user, password = await rabbit_user()
    queue = await rabbit_queue()
    keys = [unique_key(f"load-{i}") for i in range(5)]
    for key in keys:
        await redis_client.rpush(key, "a")
    port = free_port()
    async with (
        scaler_process(
            tmp_path / "scaler.log", port, SCALER_GRACE_PERIOD="5", SCALER_CACHE_TTL="0"
        ) as process,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        await wait_serving(channel)
        stub = pb_grpc.ExternalScalerStub(channel)
        rabbit = rabbitmq_metadata(queue, "amqp", user=user, password=password)
        streams = [StreamReader(stub.StreamIsActive(ref(redis_metadata(k), name=k))) for k in keys]
        streams.append(StreamReader(stub.StreamIsActive(ref(rabbit, name="rabbit"))))
        streams.append(StreamReader(stub.StreamIsActive(ref(kafka, name="kafka"))))
        for stream in streams:
            await stream.next()
        assert await _redis_clients(redis_client) >= 1
        for _ in range(50):  # the management API lists connections with its stats
            if await rabbitmq_api.connections_of(user):
                break
            await asyncio.sleep(0.1)
        assert len(await rabbitmq_api.connections_of(user)) == 1
        # Kafka counts its clients only over JMX: the broker process's sockets are counted instead
        kafka_pid = broker_pid("kafka")
        scaler_ends = {s.local for s in sockets.connections(process.pid)}
        assert sockets.between(kafka_pid, process.pid)

        stop = asyncio.Event()
        outcomes: list[str] = []

        async def load(n: int) -> None:
            while not stop.is_set():
                request = pb.GetMetricsRequest(
                    scaledObjectRef=ref(redis_metadata(keys[n % len(keys)])), metricName=""
                )
                try:
                    reply = await stub.GetMetrics(request, timeout=5)
                    assert reply.metricValues[0].metricValue == 1
                    outcomes.append("OK")
                except grpc.aio.AioRpcError as err:
                    outcomes.append(err.code().name)
                    return  # refused after shutdown began: the server is going away

        workers = [asyncio.ensure_future(load(n)) for n in range(20)]
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        for stream in streams:
            assert await stream.status(timeout=10) == grpc.StatusCode.OK
        stop.set()
        await asyncio.gather(*workers)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    # every RPC either answered correctly or was refused as the server stopped: never a wrong value
    assert outcomes.count("OK") > 50
    assert set(outcomes) <= {"OK", "UNAVAILABLE", "CANCELLED"}
    # connections closed, as the brokers count them
    assert await _redis_clients(redis_client) == 0
    for _ in range(50):
        if not await rabbitmq_api.connections_of(user):
            break
        await asyncio.sleep(0.1)
    assert await rabbitmq_api.connections_of(user) == []
    # closed by the scaler (AMQP connection.close), not dropped: RabbitMQ logs a dropped TCP
    # connection as a warning, "client unexpectedly closed TCP connection"
    node = os.environ.get("SCALER_TEST_RABBITMQ_NODE", "kqs@localhost")
    closes = [
        line
        for line in (RUN_DIR / "rabbitmq" / "log" / f"{node}.log").read_text().splitlines()
        if "closing AMQP connection" in line and f"user: '{user}'" in line
    ]
    assert len(closes) == 1
    assert "[info]" in closes[0], closes
    held = [s for s in sockets.connections(kafka_pid) if s.remote in scaler_ends]
    assert [s for s in held if s.state == sockets.ESTABLISHED] == []
