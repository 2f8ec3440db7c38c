"""The rabbitmq backend against a real RabbitMQ, over the real gRPC server, compared with RabbitMQ.

Every expected number is RabbitMQ's own, read through the management API by the fixtures
(``rabbitmq_api``), never through the code under test. The management API publishes statistics
every second (``collect_statistics_interval = 1000`` in scripts/brokers/rabbitmq.sh), so each
comparison first waits for RabbitMQ's view to settle on the state the test created.

Rate tolerance: a rate we report must lie within 10 % (plus 1 msg/s) of the management API's own
rate read just before and just after ours; that is the only slack, the rates come from the same
one-second samples. The broker stop/restart test runs last (it takes the longest).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import grpc
import pytest

from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.errors import BackendUnavailable
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.rabbitmq_fixtures import (
    AmqpPeer,
    QueueFactory,
    QueueRef,
    RabbitApi,
    RabbitBrokerControl,
    RabbitMetadata,
    UserFactory,
)
from tests.streams import StreamReader

pytestmark = pytest.mark.integration

#: relative slack of a reported rate against the management API's own (see the module doc)
RATE_TOLERANCE = 0.10
RATE_SLACK = 1.0  # msg/s


async def value_of(running: Any, metadata: dict[str, str]) -> float:
    reply = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
    )
    [metric] = reply.metricValues
    return float(metric.metricValueFloat)


async def error_of(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_counts_equal_rabbitmqs_own_through_publish_deliver_and_ack(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    queue = await rabbit_queue("Orders.Counts")
    running = await serve(cache_ttl=0.0)
    amqp = rabbitmq_metadata(queue, "amqp", activationValue="6")
    http = rabbitmq_metadata(queue, "http", activationValue="6")
    ready_only = rabbitmq_metadata(queue, "http", excludeUnacknowledged="true")

    async def compare(stage: str, **expected: int) -> dict[str, Any]:
        own = await rabbitmq_api.settled(queue, **expected)
        assert await value_of(running, amqp) == own["messages_ready"], stage
        assert await value_of(running, http) == own["messages"], stage
        assert await value_of(running, ready_only) == own["messages_ready"], stage
        return own

    spec = (await running.stub.GetMetricSpec(ref(http))).metricSpecs
    assert [(s.metricName, s.targetSizeFloat) for s in spec] == [
        (f"rabbitmq-{queue.name.replace('.', '-')}", 20.0)  # KEDA's NormalizeString keeps case
    ]

    await amqp_peer.publish(queue, 10)
    await compare("published", messages=10, messages_ready=10, messages_unacknowledged=0)

    held = await amqp_peer.take(queue, 4)
    own = await compare("delivered", messages=10, messages_ready=6, messages_unacknowledged=4)
    # the difference that matters: AMQP sees 6 ready (not > 6: inactive) while 4 are in work;
    # the management API sees all 10 (active)
    assert own["messages_unacknowledged"] == 4
    assert (await running.stub.IsActive(ref(amqp))).result is False
    assert (await running.stub.IsActive(ref(http))).result is True

    await held.ack(2)
    await compare("acknowledged", messages=8, messages_ready=6, messages_unacknowledged=2)


async def test_regex_sum_max_avg_in_another_vhost_and_vhost_override(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
    rabbitmq_vhost: str,
) -> None:
    prefix = f"kqs-re-{uuid.uuid4().hex[:8]}"
    queues = [await rabbit_queue(f"{prefix}-part", vhost=rabbitmq_vhost) for _ in range(3)]
    decoy = await rabbit_queue("kqs-decoy", vhost=rabbitmq_vhost)  # not matched by the regex
    same_name_in_root = QueueRef("/", queues[0].name)  # the vhost really selects
    await rabbitmq_api.create_queue(same_name_in_root)
    try:
        for queue, count in zip(queues, (2, 5, 9), strict=True):
            await amqp_peer.publish(queue, count)
        await amqp_peer.publish(decoy, 50)
        await amqp_peer.publish(same_name_in_root, 70)
        own = [
            (await rabbitmq_api.settled(q, messages=n))["messages"]
            for q, n in zip(queues, (2, 5, 9), strict=True)
        ]
        await rabbitmq_api.settled(decoy, messages=50)
        await rabbitmq_api.settled(same_name_in_root, messages=70)
        expected = {"sum": sum(own), "max": max(own), "avg": sum(own) // len(own)}
        assert expected == {"sum": 16, "max": 9, "avg": 5}

        running = await serve(cache_ttl=0.0)
        regex = f"^{prefix}-part-.*$"
        for operation, value in expected.items():
            in_path = rabbitmq_metadata(
                regex, "http", vhost=rabbitmq_vhost, useRegex="true", operation=operation
            )
            assert await value_of(running, in_path) == value, operation
            # the host names vhost `/`; vhostName overrides it
            override = rabbitmq_metadata(
                regex,
                "http",
                vhost="/",
                vhostName=rabbitmq_vhost,
                useRegex="true",
                operation=operation,
            )
            assert await value_of(running, override) == value, operation

        # one queue in the other vhost, over both protocols, by path and by vhostName
        single = queues[2]
        for protocol in ("amqp", "http"):
            by_path = rabbitmq_metadata(single, protocol)
            by_name = rabbitmq_metadata(single, protocol, vhost="/", vhostName=rabbitmq_vhost)
            assert await value_of(running, by_path) == 9, protocol
            assert await value_of(running, by_name) == 9, protocol
            in_root = rabbitmq_metadata(same_name_in_root, protocol)
            assert await value_of(running, in_root) == 70, protocol

        # no match is 0 (KEDA); more matches than one page is an error, not a partial sum
        nothing = rabbitmq_metadata(f"^{prefix}-none-.*$", "http", useRegex="true")
        assert await value_of(running, nothing) == 0
        paged = rabbitmq_metadata(
            regex, "http", vhost=rabbitmq_vhost, useRegex="true", pageSize="2"
        )
        err = await error_of(
            running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(paged)))
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "raise pageSize" in (err.details() or "")
    finally:
        await rabbitmq_api.delete_queue(same_name_in_root)


def _within(ours: float, *theirs: float) -> bool:
    low = min(theirs) * (1 - RATE_TOLERANCE) - RATE_SLACK
    high = max(theirs) * (1 + RATE_TOLERANCE) + RATE_SLACK
    return low <= ours <= high


async def test_rates_under_steady_traffic_match_the_management_api(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    queue = await rabbit_queue("kqs-rates")
    running = await serve(cache_ttl=0.0)
    publish = rabbitmq_metadata(queue, "http", mode="MessageRate", value="10")
    deliver = rabbitmq_metadata(queue, "http", mode="DeliverGetRate", value="10")
    ratio = rabbitmq_metadata(queue, "http", mode="PublishedToDeliveredRatio", value="1")
    rate = 40.0
    stop = amqp_peer.steady_traffic(queue, rate)
    try:
        # wait until RabbitMQ itself sees the steady state (its rates come from 1-s samples),
        # in both rates: its deliver/get rate can show one sample after the publish rate, and
        # until then the ratio is activationValue (KEDA's rule for P > 0 and D = 0)
        deadline = time.monotonic() + 15
        while True:
            stats = (await rabbitmq_api.queue(queue)).get("message_stats", {})
            seen = [
                stats.get(k, {}).get("rate", 0.0)
                for k in ("publish_details", "deliver_get_details")
            ]
            steady = all(abs(r - rate) <= rate * 0.25 for r in seen)
            if steady or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert steady, f"RabbitMQ never saw {rate}/s published and delivered; last {seen}"
        for _ in range(3):
            before = (await rabbitmq_api.queue(queue))["message_stats"]
            ours_publish = await value_of(running, publish)
            ours_deliver = await value_of(running, deliver)
            ours_ratio = await value_of(running, ratio)
            after = (await rabbitmq_api.queue(queue))["message_stats"]
            theirs_publish = (before["publish_details"]["rate"], after["publish_details"]["rate"])
            theirs_deliver = (
                before["deliver_get_details"]["rate"],
                after["deliver_get_details"]["rate"],
            )
            assert _within(ours_publish, *theirs_publish), (ours_publish, theirs_publish)
            assert _within(ours_deliver, *theirs_deliver), (ours_deliver, theirs_deliver)
            # consumers keep up: published/delivered near 1
            assert 0.5 <= ours_ratio <= 1.5, ours_ratio
            assert (await running.stub.IsActive(ref(publish))).result is True
            await asyncio.sleep(0.5)
    finally:
        sent = await stop()
    assert sent > 0


async def test_200_missing_queue_lookups_leave_connections_and_channels_as_they_were(
    rabbit_user: UserFactory,
    serve,
    rabbit_queue: QueueFactory,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    # a user of this test only, so that the broker's counts are ours even if others use the node
    user, password = await rabbit_user(("/",))
    existing = await rabbit_queue("kqs-exists")
    running = await serve(cache_ttl=0.0)
    present = rabbitmq_metadata(existing, "amqp", user=user, password=password)
    assert await value_of(running, present) == 0  # opens the one connection
    before = await _settled_connections(rabbitmq_api, user)
    assert [c["channels"] for c in before] == [0]

    missing = rabbitmq_metadata(
        f"kqs-missing-{uuid.uuid4().hex}", "amqp", user=user, password=password
    )
    for i in range(200):
        err = await error_of(
            running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(missing)))
        )
        assert err.code() == grpc.StatusCode.NOT_FOUND, (i, err.details())
    assert "not found" in (err.details() or "")
    assert await value_of(running, present) == 0  # the connection still serves

    after = await _settled_connections(rabbitmq_api, user)
    # the same single connection (same client port), no channel left open on it
    assert [(c["name"], c["channels"]) for c in after] == [(before[0]["name"], 0)]
    assert await rabbitmq_api.channels_of(user) == []


async def _settled_connections(api: RabbitApi, user: str) -> list[dict[str, Any]]:
    # connection and channel counts reach the management API with the next statistics emission
    await asyncio.sleep(1.5)
    last: list[dict[str, Any]] = []
    for _ in range(20):
        current = await api.connections_of(user)
        key = [(c["name"], c.get("channels")) for c in current]
        if current and key == [(c["name"], c.get("channels")) for c in last]:
            return current
        last = current
        await asyncio.sleep(0.5)
    return last


async def test_missing_queue_wrong_credentials_and_no_permission(
    rabbit_user: UserFactory,
    serve,
    rabbit_queue: QueueFactory,
    rabbitmq_metadata: RabbitMetadata,
    rabbitmq_vhost: str,
    caplog,
) -> None:
    caplog.set_level(logging.DEBUG)
    queue = await rabbit_queue("kqs-auth")
    # a user with permissions on `/` only
    user, password = await rabbit_user(("/",))
    running = await serve(cache_ttl=0.0)
    wrong = "wrong-pw-8c7b6a"
    for protocol in ("amqp", "http"):
        cases = [
            (
                rabbitmq_metadata(f"kqs-nope-{uuid.uuid4().hex}", protocol),
                grpc.StatusCode.NOT_FOUND,
            ),
            (
                rabbitmq_metadata(queue, protocol, password=wrong),
                grpc.StatusCode.UNAUTHENTICATED,
            ),
            (
                rabbitmq_metadata(
                    "kqs-any", protocol, vhost=rabbitmq_vhost, user=user, password=password
                ),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
        ]
        for metadata, code in cases:
            for call in (
                running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
                running.stub.IsActive(ref(metadata)),
            ):
                err = await error_of(call)
                assert err.code() == code, (protocol, metadata["queueName"], err.details())
                for secret in (wrong, password, "kqs-secret"):
                    assert secret not in (err.details() or "")
    for secret in (wrong, password, "kqs-secret"):
        assert secret not in caplog.text


async def test_client_closed_while_connecting_leaves_no_connection(
    rabbit_user: UserFactory,
    rabbit_queue: QueueFactory,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
) -> None:
    # the pool closes a client (idle eviction, rebuild after an error) while a read on it is
    # still opening its connection: that connection must not survive the client
    user, password = await rabbit_user(("/",))
    queue = await rabbit_queue("kqs-race")
    backend = RabbitMQBackend(timeout=2.0)
    trigger = backend.parse(rabbitmq_metadata(queue, "amqp", user=user, password=password))
    client = backend.connect(trigger.connection)
    read = asyncio.create_task(client.measure(trigger.resource))
    await asyncio.sleep(0)  # the read is now connecting
    await client.aclose()
    with pytest.raises(BackendUnavailable):
        await read
    await asyncio.sleep(1.5)  # connection counts reach the management API within a second
    assert await rabbitmq_api.connections_of(user) == []


async def test_rate_mode_over_amqp_is_refused_naming_the_management_api(
    serve, rabbitmq_metadata: RabbitMetadata
) -> None:
    running = await serve()
    metadata = rabbitmq_metadata("jobs", "amqp", mode="MessageRate", value="5")
    err = await error_of(running.stub.GetMetricSpec(ref(metadata)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only the management API has" in (err.details() or "")
    assert "kqs-secret" not in (err.details() or "")


async def test_broker_stopped_is_an_error_never_zero_and_values_return_after_restart(
    serve,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
    rabbitmq_api: RabbitApi,
    rabbitmq_metadata: RabbitMetadata,
    rabbitmq_broker_control: RabbitBrokerControl,
) -> None:
    queue = await rabbit_queue("kqs-restart")  # durable, with persistent messages
    await amqp_peer.publish(queue, 5)
    await rabbitmq_api.settled(queue, messages=5)
    running = await serve(cache_ttl=0.0, backend_timeout=2.0)
    triggers = {p: rabbitmq_metadata(queue, p) for p in ("amqp", "http")}
    for metadata in triggers.values():
        assert await value_of(running, metadata) == 5
    stream = StreamReader(running.stub.StreamIsActive(ref(triggers["amqp"])))
    assert await stream.next() is True

    await rabbitmq_broker_control.stop()
    for protocol, metadata in triggers.items():
        for call in (
            running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata))),
            running.stub.IsActive(ref(metadata)),
        ):
            err = await error_of(call)  # an error, never a value (of 0 or anything else)
            assert err.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ), (protocol, err.code(), err.details())
    # GetMetricSpec needs no broker: it keeps answering so that KEDA's fallback can act
    assert (await running.stub.GetMetricSpec(ref(triggers["http"]))).metricSpecs[0].targetSize == 20

    await rabbitmq_broker_control.start()
    # the same server (no restart): values return, AMQP at once, HTTP once RabbitMQ has
    # published the recovered queue's statistics (until then an error, never 0)
    own = await rabbitmq_api.settled(queue, messages=5)
    for protocol, metadata in triggers.items():
        outcomes = await _poll_until_value(running, metadata, seconds=10)
        *failures, value = outcomes
        assert set(failures) <= {grpc.StatusCode.UNAVAILABLE}, (protocol, outcomes)
        assert value == own["messages"] == 5, (protocol, outcomes)
    assert (await running.stub.IsActive(ref(triggers["amqp"]))).result is True
    assert not stream.task.done()  # the stream stayed open through the outage
    stream.cancel()


async def _poll_until_value(
    running: Any, metadata: dict[str, str], seconds: float
) -> list[grpc.StatusCode | float]:
    """GetMetrics every 0.2 s until it answers: the error codes seen, then the value."""
    outcomes: list[grpc.StatusCode | float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            outcomes.append(await value_of(running, metadata))
            return outcomes
        except grpc.aio.AioRpcError as err:
            outcomes.append(err.code())
        await asyncio.sleep(0.2)
    raise AssertionError(f"no value within {seconds} s: {outcomes}")


async def test_missing_queue_lookups_do_not_grow_memory_on_the_shared_connection(amqp_url) -> None:
    # aio-pika's Channel leaks a close callback on the connection for each channel the broker
    # closes; the backend declares on aiormq's channel to avoid it (found by bench/soak.py)
    import gc
    import tracemalloc

    from scaler.errors import TargetNotFound

    backend = RabbitMQBackend(3.0)
    trigger = backend.parse(
        {"backend": "rabbitmq", "host": amqp_url, "queueName": "kqs-never-declared"}
    )
    client = backend.connect(trigger.connection)

    async def lookups(count: int) -> None:
        for _ in range(count):
            with pytest.raises(TargetNotFound):
                await client.measure(trigger.resource)

    try:
        await lookups(200)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await lookups(1000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        await client.aclose()
    assert grown < 300 * 1024, f"{grown / 1024:.0f} KiB retained by 1,000 failed look-ups"
