"""backend: rabbitmq ``mode: OldestMessageAge`` on the management client with a stub transport:
the age is the broker's clock (the answer's Date header) minus the queue's
``head_message_timestamp``; what is unknown is an error saying which fact and why, never 0;
``operation`` over ages; AMQP refused; the read shared with every other mode."""

from __future__ import annotations

import grpc
import pytest

from scaler.backends.base import OLDEST_AGE
from scaler.errors import MetadataError, UnsupportedResource
from tests.conftest import ref
from tests.rabbitmq_support import (
    AMQP,
    BROKER_NOW,
    HTTP,
    ManagementStub,
    management_stub,
    measure,
    parse_metadata,
    queue_json,
)

AGE = {"mode": "OldestMessageAge", "value": "60"}
SECRET = "age-pw-5e1f"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> ManagementStub:
    return management_stub(monkeypatch)


async def test_the_age_is_the_brokers_clock_minus_the_head_timestamp(
    stub: ManagementStub,
) -> None:
    stub.body = queue_json(ready=2, head=BROKER_NOW - 120)
    trigger = parse_metadata({**HTTP, **AGE})
    measurement = await measure(trigger)
    evaluation = trigger.evaluate(measurement)
    assert (evaluation.value, evaluation.active) == (120.0, True)
    assert trigger.target == 60.0
    assert trigger.measures_age is True
    # the shared facts: the gauge's, the broker's clock, and the queue's own
    assert measurement.facts[OLDEST_AGE] == 120.0
    assert measurement.facts["broker_time"] == BROKER_NOW
    [item] = measurement.items
    assert (item["age_seconds"], item["head_message_timestamp"]) == (120.0, BROKER_NOW - 120)
    assert stub.seen == ["/api/queues/orders/jobs"]  # the queue depth's own call, nothing more


@pytest.mark.parametrize(("activation", "active"), [("119", True), ("120", False)])
async def test_activation_value_applies_to_the_age(
    stub: ManagementStub, activation: str, active: bool
) -> None:
    stub.body = queue_json(ready=1, head=BROKER_NOW - 120)
    trigger = parse_metadata({**HTTP, **AGE, "activationValue": activation})
    assert trigger.evaluate(await measure(trigger)).active is active


@pytest.mark.parametrize(
    ("queue", "what"),
    [
        (queue_json(), "an empty queue, which reports no head timestamp"),
        (queue_json(unacked=3, head=BROKER_NOW - 600), "work in flight only: nothing waits"),
        (queue_json(kind="quorum"), "an empty quorum queue"),
    ],
)
async def test_nothing_waiting_is_age_zero(
    stub: ManagementStub, queue: dict[str, object], what: str
) -> None:
    stub.body = queue
    trigger = parse_metadata({**HTTP, **AGE})
    measurement = await measure(trigger)
    assert trigger.evaluate(measurement).value == 0.0, what
    assert trigger.evaluate(measurement).active is False, what
    assert measurement.facts[OLDEST_AGE] == 0.0


async def test_waiting_messages_without_a_head_timestamp_are_failed_precondition(
    stub: ManagementStub,
) -> None:
    stub.body = queue_json(ready=4, head=None)
    trigger = parse_metadata({**HTTP, **AGE, "host": f"http://user:{SECRET}@rabbit.svc/orders"})
    measurement = await measure(trigger)
    with pytest.raises(UnsupportedResource) as err:
        trigger.evaluate(measurement)
    message = str(err.value)
    for part in ("queue 'jobs' (classic) has 4 ready messages", "head_message_timestamp"):
        assert part in message
    assert "publishers set no AMQP timestamp property" in message
    assert SECRET not in message
    assert OLDEST_AGE not in measurement.facts  # unknown, not 0, for the gauge too
    # the same read still serves the modes that need no age
    assert parse_metadata(HTTP).evaluate(measurement).value == 4.0


@pytest.mark.parametrize("kind", ["quorum", "stream"])
async def test_queue_types_that_report_no_head_timestamp_say_so(
    stub: ManagementStub, kind: str
) -> None:
    stub.body = queue_json(ready=1, kind=kind)
    trigger = parse_metadata({**HTTP, **AGE})
    with pytest.raises(UnsupportedResource, match=f"\\({kind}\\).*{kind} queues do not report"):
        trigger.evaluate(await measure(trigger))


@pytest.mark.parametrize("date", [None, "yesterday at noon"])
async def test_no_readable_date_header_is_an_error_naming_it(
    stub: ManagementStub, date: str | None
) -> None:
    stub.body = queue_json(ready=1, head=BROKER_NOW - 5)
    stub.date = date
    trigger = parse_metadata({**HTTP, **AGE})
    measurement = await measure(trigger)
    with pytest.raises(UnsupportedResource, match="no readable Date header"):
        trigger.evaluate(measurement)
    assert "broker_time" not in measurement.facts
    assert parse_metadata(HTTP).evaluate(measurement).value == 1.0


async def test_a_head_timestamp_ahead_of_the_broker_counts_zero_and_is_reported(
    stub: ManagementStub,
) -> None:
    stub.body = queue_json(ready=1, head=BROKER_NOW + 30)
    trigger = parse_metadata({**HTTP, **AGE})
    measurement = await measure(trigger)
    assert trigger.evaluate(measurement).value == 0.0
    assert measurement.facts["head_ahead_seconds"] == 30.0
    assert measurement.items[0]["head_ahead_seconds"] == 30.0


def _regex_answer() -> dict[str, object]:
    return {
        "items": [
            queue_json("jobs-a", ready=1, head=BROKER_NOW - 30),
            queue_json("jobs-b", ready=5, head=BROKER_NOW - 90),
            queue_json("jobs-c"),  # empty: age 0
        ]
    }


@pytest.mark.parametrize(
    ("operation", "age"),
    [(None, 90.0), ("max", 90.0), ("avg", 40.0), ("sum", 120.0)],
)
async def test_regex_ages_combine_by_operation_max_unless_told(
    stub: ManagementStub, operation: str | None, age: float
) -> None:
    stub.body = _regex_answer()
    metadata = {**HTTP, **AGE, "queueName": "^jobs-.*$", "useRegex": "true"}
    if operation is not None:
        metadata["operation"] = operation
    trigger = parse_metadata(metadata)
    measurement = await measure(trigger)
    assert trigger.evaluate(measurement).value == pytest.approx(age)
    # the gauge's fact is the oldest head whatever a trigger's operation
    assert measurement.facts[OLDEST_AGE] == 90.0


async def test_regex_names_the_queue_whose_age_is_unknown(stub: ManagementStub) -> None:
    stub.body = _regex_answer()
    stub.body["items"].append(queue_json("jobs-quorum", ready=2, kind="quorum"))
    trigger = parse_metadata({**HTTP, **AGE, "queueName": "^jobs-.*$", "useRegex": "true"})
    with pytest.raises(UnsupportedResource, match="queue 'jobs-quorum' \\(quorum\\)"):
        trigger.evaluate(await measure(trigger))


async def test_a_regex_matching_nothing_is_age_zero(stub: ManagementStub) -> None:
    stub.body = {"items": []}
    trigger = parse_metadata({**HTTP, **AGE, "queueName": "^none-.*$", "useRegex": "true"})
    assert trigger.evaluate(await measure(trigger)).value == 0.0


async def test_the_batched_watcher_read_carries_the_head_timestamp(stub: ManagementStub) -> None:
    stub.body = {"items": [queue_json("jobs", ready=1, head=BROKER_NOW - 45)]}
    trigger = parse_metadata({**HTTP, **AGE})
    assert trigger.evaluate(await measure(trigger, batched=True)).value == 45.0


def test_operation_of_ages_defaults_to_max_and_keda_modes_keep_sum() -> None:
    regex = {**HTTP, "queueName": "^jobs-.*$", "useRegex": "true"}
    assert parse_metadata({**regex, **AGE}).operation == "max"
    assert parse_metadata({**regex, **AGE, "operation": "sum"}).operation == "sum"
    assert parse_metadata(regex).operation == "sum"
    assert parse_metadata({**regex, "mode": "MessageRate", "value": "5"}).operation == "sum"


def test_the_age_shares_the_read_of_every_other_mode() -> None:
    age = parse_metadata({**HTTP, **AGE, "activationValue": "30"})
    depth = parse_metadata(HTTP)
    assert (age.connection, age.resource) == (depth.connection, depth.resource)
    assert age.metric_name() == depth.metric_name() == "rabbitmq-jobs"
    assert depth.measures_age is False


def test_the_age_over_amqp_is_refused_naming_the_management_api() -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({**AMQP, **AGE})
    assert err.value.problems == (
        "rabbitmq: mode: 'OldestMessageAge' needs the timestamp of the message at the head of "
        "the queue, which only the management API reports (head_message_timestamp): use an "
        "http:// or https:// host (protocol: http)",
    )


async def test_the_age_over_amqp_is_invalid_argument_at_get_metric_spec(serve) -> None:
    running = await serve()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetricSpec(
            ref({**AMQP, **AGE, "host": f"amqp://user:{SECRET}@rabbit.svc/orders"})
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only the management API reports" in (err.value.details() or "")
    assert SECRET not in (err.value.details() or "")
