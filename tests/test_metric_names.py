"""Metric names are exactly those KEDA v2.20.2 gives its built-in triggers, so dashboards on
``keda_scaler_metrics_value`` survive a migration: ``util.NormalizeString`` replaces only
``/ . : % ( )`` with ``-`` and keeps case and ``_``; RabbitMQ's name is ``url.QueryEscape``d
first. The expected names were computed with Go's ``url.QueryEscape`` and KEDA's rule."""

from __future__ import annotations

import pytest

from scaler.backends import build_backends

BACKENDS = build_backends(1.0)
REDIS = {"backend": "redis", "address": "redis:6379"}
KAFKA = {"backend": "kafka", "bootstrapServers": "kafka:9092"}
RABBITMQ = {"backend": "rabbitmq", "host": "http://rabbitmq:15672/vh"}


@pytest.mark.parametrize(
    ("metadata", "kedas"),
    [
        ({**REDIS, "listName": "Jobs_High"}, "redis-Jobs_High"),
        ({**REDIS, "listName": "Orders/High.Priority:v2"}, "redis-Orders-High-Priority-v2"),
        ({**REDIS, "listName": "a(b):c%d"}, "redis-a-b--c-d"),
        ({**REDIS, "listName": "Jobs_High.v2/eu"}, "redis-Jobs_High-v2-eu"),
        ({**KAFKA, "consumerGroup": "g", "topic": "Orders_EU.v1"}, "kafka-Orders_EU-v1"),
        ({**KAFKA, "consumerGroup": "g", "topic": "events/Raw"}, "kafka-events-Raw"),
        ({**KAFKA, "consumerGroup": "Billing_Group.v2"}, "kafka-Billing_Group-v2-topics"),
        ({**RABBITMQ, "queueName": "Orders_High.v2/eu"}, "rabbitmq-Orders_High-v2-2Feu"),
        ({**RABBITMQ, "queueName": "orders-.*", "useRegex": "true"}, "rabbitmq-orders---2A"),
        ({**RABBITMQ, "queueName": "a b/c"}, "rabbitmq-a+b-2Fc"),
        ({**RABBITMQ, "queueName": "é"}, "rabbitmq--C3-A9"),
        ({**RABBITMQ, "queueName": "Q(1):x%"}, "rabbitmq-Q-281-29-3Ax-25"),
    ],
)
def test_metric_names_are_kedas(metadata: dict[str, str], kedas: str) -> None:
    assert BACKENDS[metadata["backend"]].parse(metadata).metric_name() == kedas
