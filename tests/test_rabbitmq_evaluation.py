"""backend: rabbitmq evaluation: KEDA's per-mode metric and activity, and how the queues a
regex matched combine (sum, max, avg), from raw facts as the clients return them."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from scaler.backends.base import Measurement
from scaler.backends.rabbitmq import RabbitTrigger
from tests.rabbitmq_support import AMQP, HTTP, parse_metadata


def queue(
    messages: int = 0, ready: int | None = None, publish: float = 0.0, deliver: float = 0.0
) -> dict[str, float | str]:
    ready = messages if ready is None else ready
    return {
        "queue": "q",
        "messages": float(messages),
        "messages_ready": float(ready),
        "messages_unacknowledged": float(messages - ready),
        "publish_rate": publish,
        "deliver_get_rate": deliver,
    }


def measured(*items: Mapping[str, float | str]) -> Measurement:
    return Measurement(sum(float(i["messages"]) for i in items), {}, tuple(items))


def http_trigger(
    mode: str = "QueueLength", activation: float = 0.0, /, **extra: str
) -> RabbitTrigger:
    return parse_metadata(
        {**HTTP, "mode": mode, "value": "10", "activationValue": str(activation), **extra}
    )


M, P, D = "messages", "publish", "deliver"


@pytest.mark.parametrize(
    ("mode", "activation", "facts", "value", "active"),
    [
        # QueueLength: M, active iff M > A
        ("QueueLength", 0, {M: 8}, 8.0, True),
        ("QueueLength", 8, {M: 8}, 8.0, False),
        ("QueueLength", 0, {M: 0}, 0.0, False),
        # MessageRate: P, active iff P > A or M > A
        ("MessageRate", 2, {M: 3, P: 0.0}, 0.0, True),
        ("MessageRate", 2, {M: 0, P: 2.5}, 2.5, True),
        ("MessageRate", 2, {M: 2, P: 2.0}, 2.0, False),
        # DeliverGetRate: D, active iff D > A
        ("DeliverGetRate", 3, {M: 100, D: 3.0}, 3.0, False),
        ("DeliverGetRate", 3, {D: 3.5}, 3.5, True),
        # PublishedToDeliveredRatio: P/D; A when P > 0 and D == 0; else 0
        ("PublishedToDeliveredRatio", 1, {P: 10.0, D: 5.0}, 2.0, True),
        ("PublishedToDeliveredRatio", 1, {P: 4.0, D: 8.0}, 0.5, False),
        ("PublishedToDeliveredRatio", 1.5, {P: 4.0, D: 0.0}, 1.5, True),
        ("PublishedToDeliveredRatio", 0, {P: 4.0, D: 0.0}, 0.0, True),
        ("PublishedToDeliveredRatio", 1, {P: 0.0, D: 0.0}, 0.0, False),
        ("PublishedToDeliveredRatio", 0, {P: 0.0, D: 6.0}, 0.0, False),
        # ExpectedQueueConsumptionTime: 0 if M == 0; A if D == 0; else (P - D)/D + M/D
        ("ExpectedQueueConsumptionTime", 5, {M: 0, P: 9.0, D: 0.0}, 0.0, False),
        ("ExpectedQueueConsumptionTime", 0, {M: 0, P: 9.0, D: 3.0}, 0.0, False),
        ("ExpectedQueueConsumptionTime", 7, {M: 10, D: 0.0}, 7.0, True),
        ("ExpectedQueueConsumptionTime", 2, {M: 10, P: 5.0, D: 5.0}, 2.0, False),
        ("ExpectedQueueConsumptionTime", 1, {M: 10, P: 2.0, D: 5.0}, 1.4, True),
        ("ExpectedQueueConsumptionTime", 1, {M: 10, P: 20.0, D: 5.0}, 5.0, True),
    ],
)
def test_per_mode_metric_and_activity(
    mode: str, activation: float, facts: dict[str, float], value: float, active: bool
) -> None:
    trigger = http_trigger(mode, activation)
    item = queue(int(facts.get(M, 0)), publish=facts.get(P, 0.0), deliver=facts.get(D, 0.0))
    evaluation = trigger.evaluate(measured(item))
    assert evaluation.value == pytest.approx(value)
    assert evaluation.active is active


def test_unacknowledged_counted_over_http_unless_excluded() -> None:
    facts = measured(queue(messages=8, ready=5))
    assert http_trigger().evaluate(facts).value == 8.0
    assert http_trigger(excludeUnacknowledged="true").evaluate(facts).value == 5.0


def test_amqp_counts_ready_messages_only() -> None:
    trigger = parse_metadata({**AMQP, "activationValue": "4"})
    facts = Measurement(5.0, {"messages_ready": 5}, ({"queue": "q", "messages_ready": 5.0},))
    assert trigger.evaluate(facts).value == 5.0
    assert trigger.evaluate(facts).active is True


@pytest.mark.parametrize(
    ("operation", "messages", "publish", "deliver"),
    [
        ("sum", 16.0, 7.5, 3.0),
        ("max", 9.0, 4.5, 2.0),
        ("avg", 5.0, 2.5, 1.0),  # counts: integer division, as KEDA (16 // 3); rates: float
    ],
)
def test_operation_over_matched_queues(
    operation: str, messages: float, publish: float, deliver: float
) -> None:
    facts = measured(
        queue(2, publish=1.0, deliver=0.5),
        queue(5, publish=2.0, deliver=0.5),
        queue(9, publish=4.5, deliver=2.0),
    )
    extra = {"operation": operation, "useRegex": "true"}
    assert http_trigger(**extra).evaluate(facts).value == messages
    assert http_trigger("MessageRate", **extra).evaluate(facts).value == pytest.approx(publish)
    assert http_trigger("DeliverGetRate", **extra).evaluate(facts).value == pytest.approx(deliver)


@pytest.mark.parametrize("operation", ["sum", "max", "avg"])
def test_no_matched_queue_is_all_zeros(operation: str) -> None:
    for mode in ("QueueLength", "MessageRate", "DeliverGetRate", "PublishedToDeliveredRatio"):
        evaluation = http_trigger(mode, useRegex="true", operation=operation).evaluate(measured())
        assert evaluation.value == 0.0
        assert evaluation.active is False


def test_avg_of_ready_counts_uses_integer_division() -> None:
    facts = measured(queue(3, ready=1), queue(4, ready=2))
    trigger = http_trigger(operation="avg", useRegex="true", excludeUnacknowledged="true")
    assert trigger.evaluate(facts).value == 1.0  # (1 + 2) // 2
