"""``mode: OldestMessageAge`` and ``activeWhileInFlight`` against a real RabbitMQ, over the real
gRPC server, compared with RabbitMQ's own numbers.

The reference is what the management API itself reports, read by the fixtures (never through
the code under test): the queue's ``head_message_timestamp`` and counts, once settled (the
statistics are published every second here), and the broker's clock. An age is compared with
the broker's clock at the moment of the read: a head published 120 s in the past is 120 s old
plus the time the test took to get there, never more than a second off (the Date header's
resolution).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from scaler.app import build_engine
from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.proto import externalscaler_pb2 as pb
from scaler.settings import Settings
from tests.conftest import ref
from tests.integration.rabbitmq_fixtures import (
    AmqpPeer,
    QueueFactory,
    RabbitApi,
    RabbitMetadata,
)
from tests.integration.test_rabbitmq import error_of, value_of
from tests.test_check import run_json

pytestmark = pytest.mark.integration

AGE = {"mode": "OldestMessageAge", "value": "60"}


def _label(metadata: dict[str, str]) -> dict[str, str]:
    """The labels of the trigger's per-resource series."""
    return {
        "backend": "rabbitmq",
        "resource": RabbitMQBackend(1.0).parse(metadata).resource_label(),
    }


async def _age_now(running: Any, metadata: dict[str, str], head: int) -> float:
    """The scaler's age, checked against the broker's clock around the read: it is now minus
    ``head``, on a clock of one-second resolution."""
    before = time.time()
    age = await value_of(running, metadata)
    after = time.time()
    assert int(before) - head - 1 <= age <= after - head + 1, (age, before - head, after - head)
    return age


async def test_the_age_is_the_head_messages_on_the_brokers_clock(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    queue = await rabbit_queue("kqs-age")
    now = int(time.time())
    oldest, newest = now - 120, now - 10
    await amqp_peer.publish(queue, 1, timestamp=oldest)
    await amqp_peer.publish(queue, 1, timestamp=newest)
    # RabbitMQ's own view: the head is the message stamped 120 s ago
    await rabbitmq_api.settled(queue, messages=2, head_message_timestamp=oldest)
    own, broker_now = await rabbitmq_api.queue_and_clock(queue)
    assert broker_now - own["head_message_timestamp"] == pytest.approx(120, abs=10)

    running = await serve(cache_ttl=0.0)
    metadata = rabbitmq_metadata(queue, "http", **AGE)
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs
    assert [(s.metricName, s.targetSizeFloat) for s in spec] == [(f"rabbitmq-{queue.name}", 60.0)]
    age = await _age_now(running, metadata, oldest)
    assert age == pytest.approx(120, abs=1 + time.time() - now)
    assert (await running.stub.IsActive(ref(metadata))).result is True
    # the gauge of the resource, set by the same read
    assert running.sample("keda_queue_scaler_oldest_age_seconds", _label(metadata)) >= age

    # once the head is consumed, the head is the message stamped 10 s ago
    held = await amqp_peer.take(queue, 1)
    await held.ack(1)
    await rabbitmq_api.settled(queue, messages=1, head_message_timestamp=newest)
    assert await _age_now(running, metadata, newest) == pytest.approx(10, abs=1 + time.time() - now)

    # an empty queue is age 0, and inactive
    held = await amqp_peer.take(queue, 1)
    await held.ack(1)
    await rabbitmq_api.settled(queue, messages=0)
    assert await value_of(running, metadata) == 0
    assert (await running.stub.IsActive(ref(metadata))).result is False


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("", "publishers set no AMQP timestamp property"),
        ("quorum", "quorum queues do not report it"),
    ],
)
async def test_waiting_messages_without_a_head_timestamp_are_failed_precondition(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
    kind: str,
    reason: str,
) -> None:
    queue = await rabbit_queue("kqs-no-stamp", kind=kind)
    await amqp_peer.publish(queue, 3)  # no timestamp property
    own = await rabbitmq_api.settled(queue, messages_ready=3)
    assert own.get("head_message_timestamp") is None  # RabbitMQ has none to report
    running = await serve(cache_ttl=0.0)
    metadata = rabbitmq_metadata(queue, "http", **AGE)
    for call in (
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
        running.stub.IsActive(ref(metadata)),
    ):
        err = await error_of(call)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
        details = err.details() or ""
        assert f"queue {queue.name!r} ({kind or 'classic'}) has 3 ready messages" in details
        assert reason in details
        assert "kqs-secret" not in details
    # the same queue still serves the modes that need no age
    assert await value_of(running, rabbitmq_metadata(queue, "http")) == own["messages"]


async def test_regex_combines_the_ages_of_several_queues(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
    rabbitmq_vhost: str,
) -> None:
    prefix = f"kqs-ages-{uuid.uuid4().hex[:8]}"
    queues = [await rabbit_queue(f"{prefix}-part", vhost=rabbitmq_vhost) for _ in range(3)]
    decoy = await rabbit_queue("kqs-decoy", vhost=rabbitmq_vhost)  # older, but not matched
    now = int(time.time())
    heads = {queues[0]: now - 30, queues[1]: now - 90, decoy: now - 900}  # queues[2]: empty
    for queue, head in heads.items():
        await amqp_peer.publish(queue, 2, timestamp=head)
        await rabbitmq_api.settled(queue, messages=2, head_message_timestamp=head)
    await rabbitmq_api.settled(queues[2], messages=0)

    running = await serve(cache_ttl=0.0)
    regex = {"useRegex": "true", "vhost": rabbitmq_vhost, **AGE}
    cases: dict[str | None, tuple[float, int]] = {
        # operation: (age at publication, how many ages of one-second resolution add up)
        None: (90, 1),  # max unless told
        "max": (90, 1),
        "avg": ((30 + 90 + 0) / 3, 1),
        "sum": (30 + 90, 2),
    }
    for operation, (age, terms) in cases.items():
        extra = {} if operation is None else {"operation": operation}
        metadata = rabbitmq_metadata(f"^{prefix}-part-.*$", "http", **regex, **extra)
        # every head has aged by the same time since publication (avg: a third of each)
        aged = (time.time() - now) * (2 if operation == "sum" else 1)
        value = await value_of(running, metadata)
        assert age - terms <= value <= age + aged + terms, (operation, value, age)
    metadata = rabbitmq_metadata(f"^{prefix}-part-.*$", "http", **regex)
    assert running.sample("keda_queue_scaler_oldest_age_seconds", _label(metadata)) >= 90


async def test_work_in_flight_keeps_a_trigger_active_with_the_key_only(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    queue = await rabbit_queue("kqs-in-flight")
    await amqp_peer.publish(queue, 2, timestamp=int(time.time()) - 300)
    held = await amqp_peer.take(queue, 2)  # a consumer holds both, unacknowledged
    own = await rabbitmq_api.settled(queue, messages_ready=0, messages_unacknowledged=2)
    running = await serve(cache_ttl=0.0)
    # the modes that see no waiting message while every message is in work (the deliveries
    # just made may show as a small deliver/get rate: activationValue stays above it)
    for options in (
        {"mode": "QueueLength", "value": "5", "excludeUnacknowledged": "true"},
        {"mode": "DeliverGetRate", "value": "5", "activationValue": "5"},
        AGE,
    ):
        without = rabbitmq_metadata(queue, "http", **options)
        keyed = rabbitmq_metadata(queue, "http", **options, activeWhileInFlight="true")
        assert (await running.stub.IsActive(ref(without))).result is False, options
        assert (await running.stub.IsActive(ref(keyed))).result is True, options
        if options["mode"] != "DeliverGetRate":  # the metric is the mode's, with or without
            assert await value_of(running, keyed) == await value_of(running, without) == 0
    labels = _label(rabbitmq_metadata(queue, "http"))
    assert running.sample("keda_queue_scaler_in_flight", labels) == 2
    assert own["messages_unacknowledged"] == 2

    await held.ack(2)
    await rabbitmq_api.settled(queue, messages=0, messages_unacknowledged=0)
    assert (await running.stub.IsActive(ref(keyed))).result is False
    assert running.sample("keda_queue_scaler_in_flight", labels) == 0


async def test_check_prints_the_age_and_the_work_in_flight(
    tmp_path: Path,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    queue = await rabbit_queue("kqs-check-age")
    head = int(time.time()) - 200
    await amqp_peer.publish(queue, 3, timestamp=head)
    held = await amqp_peer.take(queue, 1)
    await rabbitmq_api.settled(queue, messages_ready=2, messages_unacknowledged=1)
    metadata = rabbitmq_metadata(queue, "http", **AGE, activeWhileInFlight="true")
    triggers = [
        {"type": "external", "metadata": metadata},
        {"type": "external", "metricType": "Value", "metadata": metadata},
    ]
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "ages", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"name": "worker"}, "triggers": triggers},
    }
    path = tmp_path / "ages.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=3.0))
    try:
        before = time.time()
        status, rows = await run_json(engine, path)
        after = time.time()
    finally:
        await engine.aclose()
    assert status == 0
    for row in rows:
        assert row["error"] is None
        assert int(before) - head - 1 <= row["value"] <= after - head + 1
        assert row["facts"]["oldest_age_seconds"] == row["value"]
        assert row["facts"]["in_flight"] == 1
        assert row["items"][0]["age_seconds"] == row["value"]
        assert row["items"][0]["head_message_timestamp"] == head
    notes = [[n for n in row["notes"] if "metricType: Value" in n] for row in rows]
    assert [bool(n) for n in notes] == [True, False]  # the warning only without Value
    assert "kqs-secret" not in yaml.safe_dump(rows)
    await held.ack(1)
