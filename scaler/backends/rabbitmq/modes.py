"""The arithmetic of ``backend: rabbitmq`` over the queues one read returned: KEDA's five modes.

The clients (``amqp``, ``management``) return raw facts per queue; the trigger (``trigger``)
applies its mode and options with these functions, so one read serves every trigger on the
queue whatever its mode, thresholds or ``operation``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scaler.backends.base import Evaluation
from scaler.backends.rabbitmq.params import (
    DELIVER_GET_RATE,
    EXPECTED_QUEUE_CONSUMPTION_TIME,
    MESSAGE_RATE,
    PUBLISHED_TO_DELIVERED_RATIO,
    QUEUE_LENGTH,
)


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
