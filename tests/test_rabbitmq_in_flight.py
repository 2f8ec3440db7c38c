"""backend: rabbitmq ``activeWhileInFlight``: active while messages are delivered and not yet
acknowledged, whatever the mode (keda#638), the metric value untouched; the in-flight count
of every management API read; refused over AMQP, which cannot see those messages."""

from __future__ import annotations

import grpc
import pytest

from scaler.backends.base import IN_FLIGHT, Measurement
from scaler.errors import MetadataError
from tests.conftest import ref
from tests.rabbitmq_support import (
    AMQP,
    BROKER_NOW,
    HTTP,
    management_stub,
    measure,
    parse_metadata,
    queue_json,
)

IN_FLIGHT_KEY = {"activeWhileInFlight": "true"}
# modes in which messages that are only in work leave a trigger inactive
IDLE_WHILE_IN_WORK = [
    {"mode": "QueueLength", "value": "10", "excludeUnacknowledged": "true"},
    {"mode": "MessageRate", "value": "10", "excludeUnacknowledged": "true"},
    {"mode": "DeliverGetRate", "value": "10"},
    {"mode": "PublishedToDeliveredRatio", "value": "1"},
    {"mode": "ExpectedQueueConsumptionTime", "value": "30", "excludeUnacknowledged": "true"},
    {"mode": "OldestMessageAge", "value": "60"},
]


def in_work(unacked: int, ready: int = 0) -> Measurement:
    """A queue (as the management client returns it) with ``unacked`` messages in work."""
    item: dict[str, float | str] = {
        "queue": "jobs",
        "messages": float(ready + unacked),
        "messages_ready": float(ready),
        "messages_unacknowledged": float(unacked),
        "publish_rate": 0.0,
        "deliver_get_rate": 0.0,
        "age_seconds": 0.0,
    }
    return Measurement(float(ready + unacked), {IN_FLIGHT: float(unacked)}, (item,))


@pytest.mark.parametrize("options", IDLE_WHILE_IN_WORK, ids=lambda o: o["mode"])
def test_work_in_flight_keeps_every_mode_active_with_the_key_only(options: dict[str, str]) -> None:
    without = parse_metadata({**HTTP, **options}).evaluate(in_work(2))
    with_key = parse_metadata({**HTTP, **options, **IN_FLIGHT_KEY}).evaluate(in_work(2))
    assert without.active is False  # KEDA's behaviour: idle while every message is in work
    assert with_key.active is True
    assert with_key.value == without.value  # activity only: the metric is the mode's


@pytest.mark.parametrize("options", IDLE_WHILE_IN_WORK, ids=lambda o: o["mode"])
def test_no_work_in_flight_changes_nothing(options: dict[str, str]) -> None:
    trigger = parse_metadata({**HTTP, **options, **IN_FLIGHT_KEY})
    assert trigger.evaluate(in_work(0)).active is False


def test_any_matched_queue_in_work_keeps_a_regex_trigger_active() -> None:
    idle, busy = in_work(0).items[0], {**in_work(1).items[0], "queue": "jobs-b"}
    measurement = Measurement(1.0, {}, (idle, busy))
    metadata = {**HTTP, "queueName": "^jobs.*$", "useRegex": "true", "operation": "max"}
    metadata.update(mode="DeliverGetRate", value="5")
    assert parse_metadata(metadata).evaluate(measurement).active is False
    assert parse_metadata({**metadata, **IN_FLIGHT_KEY}).evaluate(measurement).active is True


def test_the_key_is_off_by_default_and_does_not_split_the_read() -> None:
    plain, keyed = parse_metadata(HTTP), parse_metadata({**HTTP, **IN_FLIGHT_KEY})
    assert plain.params.active_while_in_flight is False
    assert (plain.connection, plain.resource) == (keyed.connection, keyed.resource)


async def test_every_management_read_reports_the_work_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stub = management_stub(monkeypatch)
    stub.body = queue_json(ready=2, unacked=3, head=BROKER_NOW - 1)
    trigger = parse_metadata(HTTP)  # no activeWhileInFlight: the gauge's fact is there anyway
    assert (await measure(trigger)).facts[IN_FLIGHT] == 3.0
    stub.body = {"items": [queue_json(ready=0, unacked=4)]}
    assert (await measure(trigger, batched=True)).facts[IN_FLIGHT] == 4.0


def test_over_amqp_the_key_is_refused_saying_why() -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({**AMQP, **IN_FLIGHT_KEY})
    assert err.value.problems == (
        "rabbitmq: activeWhileInFlight: true needs the count of unacknowledged messages, which "
        "only the management API reports (AMQP sees ready messages only): use an http:// or "
        "https:// host (protocol: http)",
    )
    # false is KEDA's behaviour, and AMQP's
    assert (
        parse_metadata({**AMQP, "activeWhileInFlight": "false"}).params.active_while_in_flight
        is False
    )


async def test_over_amqp_the_key_is_invalid_argument_at_get_metric_spec(serve) -> None:
    running = await serve()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetricSpec(ref({**AMQP, **IN_FLIGHT_KEY}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only the management API reports" in (err.value.details() or "")
