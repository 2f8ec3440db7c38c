"""Shared by the backend: rabbitmq unit tests: trigger metadata to start from, parsing through
the registry entry, the connection identities the tables expect, and a management API on a
stub transport that answers with the broker's clock (its Date header)."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from scaler.backends.base import Measurement
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


#: the broker's clock in the stub's answers (a whole second, as the Date header has it)
BROKER_NOW = 1_800_000_000


class ManagementStub:
    """The management API: ``body`` answers every request, dated ``date`` (None: no Date
    header), and the request paths seen."""

    def __init__(self) -> None:
        self.body: Any = {}
        self.date: str | None = formatdate(BROKER_NOW, usegmt=True)
        self.seen: list[str] = []

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.raw_path.decode())
        headers = {} if self.date is None else {"date": self.date}
        return httpx.Response(200, json=self.body, headers=headers)


def answer_with(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[httpx.Request], httpx.Response]
) -> None:
    """Every httpx client made from now on (the backend's) gets its answers from ``answer``."""
    real: Callable[..., httpx.AsyncClient] = httpx.AsyncClient
    monkeypatch.setattr(
        httpx, "AsyncClient", lambda **kw: real(transport=httpx.MockTransport(answer), **kw)
    )


def management_stub(monkeypatch: pytest.MonkeyPatch) -> ManagementStub:
    """Every httpx client made from now on (the backend's) talks to a new stub."""
    stub = ManagementStub()
    answer_with(monkeypatch, stub.answer)
    return stub


def queue_json(
    name: str = "jobs",
    ready: int = 0,
    unacked: int = 0,
    head: float | None = None,
    kind: str = "classic",
) -> dict[str, Any]:
    """One queue object as the management API returns it (``head``: its
    ``head_message_timestamp``; quorum and stream queues leave the key out)."""
    queue: dict[str, Any] = {
        "name": name,
        "type": kind,
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    }
    if kind == "classic":
        queue["head_message_timestamp"] = head
    return queue


async def measure(trigger: RabbitTrigger, *, batched: bool = False) -> Measurement:
    """One read of the trigger's queue through its backend's client: a single read, or the
    watchers' batch of one (which must cost one request and succeed)."""
    client = RabbitMQBackend(1.0).connect(trigger.connection)
    try:
        if not batched:
            return await client.measure(trigger.resource)
        results, requests = await client.measure_many([trigger.resource])
    finally:
        await client.aclose()
    measurement = results[trigger.resource]
    assert isinstance(measurement, Measurement), measurement
    assert requests == 1
    return measurement
