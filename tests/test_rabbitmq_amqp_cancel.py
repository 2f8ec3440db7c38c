"""A read cancelled while its AMQP connection is being opened leaks no connection.

aio-pika opens the connection, then waits for its reader task; a cancellation in between (a
read's deadline just as a paused broker answers) used to drop an open connection that nobody
held, with its three tasks (CI caught it as one extra socket after RabbitMQ was SIGSTOPped).
The real broker's view of this is tests/integration/test_faults_under_load.py; here a stub
connection makes the window deterministic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scaler.backends.rabbitmq.amqp import AmqpClient
from scaler.backends.rabbitmq.trigger import RabbitQueue
from tests.rabbitmq_support import AMQP, parse_metadata


class StubLink:
    """An opened connection: it only records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False
        self.is_closed = False
        self.transport = None

    async def close(self) -> None:
        self.closed = True
        self.is_closed = True


@pytest.fixture
def opening(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, list[StubLink]]:
    """``aio_pika.connect`` that completes when the event is set, whoever still waits."""
    answer = asyncio.Event()
    opened: list[StubLink] = []

    async def connect(**_: Any) -> StubLink:
        await answer.wait()
        link = StubLink()
        opened.append(link)
        return link

    monkeypatch.setattr("scaler.backends.rabbitmq.amqp.aio_pika.connect", connect)
    return answer, opened


def _client_and_queue() -> tuple[AmqpClient, RabbitQueue]:
    trigger = parse_metadata(AMQP)
    return AmqpClient(trigger.connection, timeout=1.0), trigger.resource


async def test_a_read_cancelled_while_connecting_closes_the_connection_it_opened(
    opening: tuple[asyncio.Event, list[StubLink]],
) -> None:
    answer, opened = opening
    client, queue = _client_and_queue()
    read = asyncio.ensure_future(client.measure(queue))
    await asyncio.sleep(0.01)  # the read is waiting for the broker's answer
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    answer.set()  # the broker answers after the caller gave up
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(opened) == 1
    assert opened[0].closed, "the connection opened for a cancelled read was left open"
    await client.aclose()


async def test_aclose_waits_for_an_abandoned_opening_and_closes_it(
    opening: tuple[asyncio.Event, list[StubLink]],
) -> None:
    answer, opened = opening
    client, queue = _client_and_queue()
    read = asyncio.ensure_future(client.measure(queue))
    await asyncio.sleep(0.01)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    closing = asyncio.ensure_future(client.aclose())
    await asyncio.sleep(0.01)
    assert not closing.done(), "aclose returned while a connection was still being opened"
    answer.set()
    await closing
    assert [link.closed for link in opened] == [True]
