"""The Kafka client against an address where nothing listens: errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from scaler.backends.kafka import ConsumerLag, KafkaBackend, KafkaConnection
from scaler.errors import BackendError, BackendUnavailable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again on return: connections are refused


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # kafka-python's abandoned sockets
async def test_failed_bootstraps_leave_no_thread_behind() -> None:
    # a listener that accepts and never answers: the client connects, then its bootstrap times out
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        backend = KafkaBackend(timeout=0.3)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        client = backend.connect(KafkaConnection((address,)))
        before = threading.active_count()
        for _ in range(3):  # each read tries (and fails) to bootstrap a new admin client
            await _fail(client)
        assert threading.active_count() == before, [t.name for t in threading.enumerate()]
        await client.aclose()
        backend.close()


async def _fail(client) -> None:
    with pytest.raises(BackendError):
        await client.measure(ConsumerLag("group", "topic"))


async def test_a_refused_bootstrap_is_unavailable_at_once() -> None:
    backend = KafkaBackend(timeout=5)
    client = backend.connect(KafkaConnection((f"127.0.0.1:{_closed_port()}",)))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="every bootstrap server refused"):
        await client.measure(ConsumerLag("group", "topic"))
    assert time.monotonic() - started < 1, "waited for the backend timeout"
    await client.aclose()
    backend.close()


async def test_the_thread_pool_is_started_in_full_and_stopped_on_close() -> None:
    before = set(threading.enumerate())
    backend = KafkaBackend(timeout=0.3, threads=3)
    started = set(threading.enumerate()) - before  # other tests' threads may come and go
    assert len(started) == 3  # a constant count: growth means a leak
    backend.close()
    for thread in started:
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive()
