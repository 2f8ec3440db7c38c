"""The arithmetic of ``backend: rabbitmq`` over the queues one read returned: KEDA's five modes,
the age of the head message (``OldestMessageAge``) and work in flight (``activeWhileInFlight``).

The clients (``amqp``, ``management``) return raw facts per queue, under the names declared
here; the trigger (``trigger``) applies its mode and options with these functions, so one read
serves every trigger on the queue whatever its mode, thresholds or ``operation``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from scaler.backends.base import Evaluation, Measurement
from scaler.backends.base import combine as combine_values
from scaler.backends.rabbitmq.params import (
    DELIVER_GET_RATE,
    EXPECTED_QUEUE_CONSUMPTION_TIME,
    MESSAGE_RATE,
    OLDEST_MESSAGE_AGE,
    PUBLISHED_TO_DELIVERED_RATIO,
    QUEUE_LENGTH,
)
from scaler.errors import UnsupportedResource

#: per queue: RabbitMQ's ``head_message_timestamp`` (seconds since the epoch), when it has one
HEAD_TIMESTAMP: Final = "head_message_timestamp"
#: per queue: seconds its head message has waited, on the broker's clock (0 when none is ready)
AGE: Final = "age_seconds"
#: per queue, and the largest of a read: how far a head timestamp is ahead of the broker's clock
AHEAD: Final = "head_ahead_seconds"
#: per queue: its type as the management API names it (``classic``, ``quorum``, ``stream``)
QUEUE_TYPE: Final = "type"
#: per read: the broker's clock when it answered (the management API's ``Date`` header)
BROKER_TIME: Final = "broker_time"
#: queue types that never report a head timestamp (rabbitmq-server#6813)
_NO_HEAD_TIMESTAMP: Final = ("quorum", "stream")


def fact(item: Mapping[str, float | str], key: str) -> float:
    """A numeric fact of one queue (0 when absent)."""
    value = item.get(key, 0.0)
    return float(value) if not isinstance(value, str) else 0.0


def combine(
    items: Sequence[Mapping[str, float | str]], operation: str, count_key: str
) -> tuple[float, float, float]:
    """(messages, publish rate, deliver/get rate) over the matched queues, by ``operation``.

    ``avg`` divides counts as integers, as KEDA does; no matched queue gives zeros, as in KEDA.
    """
    if not items:
        return 0.0, 0.0, 0.0
    counts = [int(fact(item, count_key)) for item in items]
    publish = [fact(item, "publish_rate") for item in items]
    deliver = [fact(item, "deliver_get_rate") for item in items]
    if operation == "max":
        # KEDA's maximum starts from 0
        return float(max(0, *counts)), max(0.0, *publish), max(0.0, *deliver)
    n = len(items)
    if operation == "avg":
        return float(sum(counts) // n), sum(publish) / n, sum(deliver) / n
    return float(sum(counts)), sum(publish), sum(deliver)


def keda_rule(mode: str, a: float, m: float, p: float, d: float) -> Evaluation:
    """KEDA's GetMetricsAndActivity of one of its modes (keda-protocol.md 2.3), from the combined
    messages ``m``, publish rate ``p`` and deliver/get rate ``d``; ``a`` is ``activationValue``."""
    if mode == QUEUE_LENGTH:
        return Evaluation(m, m > a)
    if mode == MESSAGE_RATE:
        return Evaluation(p, p > a or m > a)
    if mode == DELIVER_GET_RATE:
        return Evaluation(d, d > a)
    if mode == PUBLISHED_TO_DELIVERED_RATIO:
        ratio = 0.0
        if p > 0 and d == 0:
            ratio = a
        elif p > 0 and d > 0:
            ratio = p / d
        return Evaluation(ratio, ratio > a or (p > 0 and d == 0))
    assert mode == EXPECTED_QUEUE_CONSUMPTION_TIME
    if m == 0:
        eta = 0.0  # an empty queue drains in no time, whatever the rates (keda#8033)
    elif d == 0:
        eta = a
    else:
        eta = (p - d) / d + m / d
    return Evaluation(eta, eta > a or (d == 0 and m > 0))


def oldest_age(measurement: Measurement, operation: str, where: str) -> float:
    """The head ages of the matched queues combined by ``operation`` (no queue: 0, as KEDA's
    modes); :class:`~scaler.errors.UnsupportedResource` naming the missing fact and why, when
    a queue with ready messages has no age (never 0 for an age that is unknown)."""
    ages: list[float] = []
    for item in measurement.items:
        age = item.get(AGE)
        if not isinstance(age, int | float):
            raise UnsupportedResource(_why_no_age(item, measurement.facts, where))
        ages.append(float(age))
    return combine_values(ages, operation)  # seconds, not counts: no integer division


def in_flight(items: Sequence[Mapping[str, float | str]]) -> float:
    """Messages delivered to consumers and not yet acknowledged, over the matched queues."""
    return sum(fact(item, "messages_unacknowledged") for item in items)


def _why_no_age(
    item: Mapping[str, float | str], facts: Mapping[str, float | str], where: str
) -> str:
    queue = item.get("queue", "?")
    if BROKER_TIME not in facts:
        return (
            f"{where} queue {queue!r}: the management API's answer has no readable Date header, "
            f"the broker's clock that {OLDEST_MESSAGE_AGE} measures the head message's age "
            "against (does a proxy in front of the management API drop it?)"
        )
    kind = str(item.get(QUEUE_TYPE, "unknown"))
    if kind in _NO_HEAD_TIMESTAMP:
        reason = f"{kind} queues do not report it (rabbitmq-server#6813); use a classic queue"
    else:
        reason = (
            "the publishers set no AMQP timestamp property on the message (set it, or have "
            "RabbitMQ set it: message_interceptors.incoming.set_header_timestamp from 3.12, the "
            "rabbitmq_message_timestamp plugin before), or the head message is paged out to "
            "disk (a lazy queue)"
        )
    ready = int(fact(item, "messages_ready"))
    return (
        f"{where} queue {queue!r} ({kind}) has {ready} ready messages but no "
        f"{HEAD_TIMESTAMP}, which {OLDEST_MESSAGE_AGE} needs: {reason}"
    )
