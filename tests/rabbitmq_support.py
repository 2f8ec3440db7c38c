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
    """The connection of ``AMQP``, with ``kw`` changed."""
    return _connection("amqp", 5672, kw)


def http_conn(**kw: object) -> RabbitConnection:
    """The connection of ``HTTP``, with ``kw`` changed."""
    return _connection("http", 15672, kw)


def _connection(protocol: str, port: int, changed: dict[str, object]) -> RabbitConnection:
    fields: dict[str, object] = {
        "protocol": protocol,
        "scheme": protocol,
        "host": "rabbit.svc",
        "port": port,
        "username": "user",
        "password": "pw",
        **changed,
    }
    return RabbitConnection(**fields)  # type: ignore[arg-type]
