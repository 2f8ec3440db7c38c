"""Shared by the backend: rabbitmq unit tests: trigger metadata to start from, parsing through
the registry entry, and the connection identities the tables expect."""

from __future__ import annotations

from scaler.backends.rabbitmq import RabbitConnection, RabbitMQBackend, RabbitTrigger

AMQP = {"backend": "rabbitmq", "host": "amqp://user:pw@rabbit.svc:5672/orders", "queueName": "jobs"}
HTTP = {
    "backend": "rabbitmq",
    "host": "http://user:pw@rabbit.svc:15672/orders",
    "queueName": "jobs",
}
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nkey-material-secret\n-----END PRIVATE KEY-----\n"


def parse_metadata(metadata: dict[str, str]) -> RabbitTrigger:
    trigger = RabbitMQBackend(timeout=1.0).parse(metadata)
    assert isinstance(trigger, RabbitTrigger)
    return trigger


def amqp_conn(**kw: object) -> RabbitConnection:
    fields: dict[str, object] = {
        "protocol": "amqp",
        "scheme": "amqp",
        "host": "rabbit.svc",
        "port": 5672,
        "username": "user",
        "password": "pw",
    }
    fields.update(kw)
    return RabbitConnection(**fields)  # type: ignore[arg-type]


def http_conn(**kw: object) -> RabbitConnection:
    fields: dict[str, object] = {
        "protocol": "http",
        "scheme": "http",
        "host": "rabbit.svc",
        "port": 15672,
        "username": "user",
        "password": "pw",
    }
    fields.update(kw)
    return RabbitConnection(**fields)  # type: ignore[arg-type]
