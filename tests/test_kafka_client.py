"""The Kafka client against an address where nothing listens: errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from scaler.backends.kafka import ConsumerLag, KafkaBackend, KafkaConnection
from scaler.errors import BackendError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again on return: connections are refused


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # kafka-python's refused sockets
async def test_failed_bootstraps_leave_no_thread_behind() -> None:
    backend = KafkaBackend(timeout=0.3)
    client = backend.connect(KafkaConnection((f"127.0.0.1:{_closed_port()}",)))
    await _fail(client)  # the backend's thread pool starts its worker
    before = threading.active_count()
    for _ in range(5):  # each read tries (and fails) to bootstrap a new admin client
        await _fail(client)
    assert threading.active_count() == before, [t.name for t in threading.enumerate()]
    await client.aclose()


async def _fail(client) -> None:
    with pytest.raises(BackendError):
        await client.measure(ConsumerLag("group", "topic"))


async def test_the_thread_pool_is_started_in_full_and_stopped_on_close() -> None:
    before = threading.active_count()
    backend = KafkaBackend(timeout=0.3, threads=3)
    assert threading.active_count() == before + 3  # a constant count: growth means a leak
    backend.close()
    for _ in range(100):
        if threading.active_count() == before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() == before
