"""The Kafka client against an address where nothing listens: errors, and nothing left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from scaler.backends import build_backends
from scaler.backends.kafka import ConsumerLag, KafkaBackend, KafkaConnection
from scaler.backends.kafka.client import KafkaClient
from scaler.errors import BackendError, BackendUnavailable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # closed again on return: connections are refused


@contextlib.contextmanager
def _silent_broker() -> Iterator[str]:
    """``host:port`` of a listener that accepts and never answers: a client connects, then its
    bootstrap times out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield f"127.0.0.1:{silent.getsockname()[1]}"


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # kafka-python's abandoned sockets
async def test_failed_bootstraps_leave_no_thread_behind() -> None:
    with _silent_broker() as address:
        backend = KafkaBackend(timeout=0.3)
        client = backend.connect(KafkaConnection((address,)))
        before = threading.active_count()
        for _ in range(3):  # each read tries (and fails) to bootstrap a new admin client
            await _fail(client)
        assert threading.active_count() == before, [t.name for t in threading.enumerate()]
        await client.aclose()
        await backend.aclose()


async def _fail(client: KafkaClient) -> None:
    with pytest.raises(BackendError):
        await client.measure(ConsumerLag("group", "topic"))


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # kafka-python's abandoned sockets
async def test_kafka_python_never_logs_the_sasl_password(caplog: pytest.LogCaptureFixture) -> None:
    # kafka-python logs its whole configuration at DEBUG when a client starts; nothing here
    # calls logs.configure(), as in a test or a program embedding the scaler
    caplog.set_level(logging.DEBUG)
    secret = "pw-in-kafka-config-4d1"
    with _silent_broker() as address:
        backend = KafkaBackend(timeout=0.3)
        connection = KafkaConnection((address,), "plaintext", "user", secret)
        client = backend.connect(connection)
        await _fail(client)  # the SASL probe times out, then the client's bootstrap does
        await client.aclose()
        await backend.aclose()
    assert secret not in caplog.text
    # silenced when the package is imported, not only by logs.configure()
    assert logging.getLogger("kafka").getEffectiveLevel() == logging.CRITICAL


async def test_a_refused_bootstrap_is_unavailable_at_once() -> None:
    backend = KafkaBackend(timeout=5)
    client = backend.connect(KafkaConnection((f"127.0.0.1:{_closed_port()}",)))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="every bootstrap server refused"):
        await client.measure(ConsumerLag("group", "topic"))
    assert time.monotonic() - started < 1, "waited for the backend timeout"
    await client.aclose()
    await backend.aclose()


def _kafka_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("kafka")}


def test_building_the_registry_starts_no_thread() -> None:
    # `check`, test collection and the manifest tests build backends they never close
    before = set(threading.enumerate())
    backends = build_backends(timeout=0.3)
    KafkaBackend(timeout=0.3, threads=3).parse(
        {"backend": "kafka", "bootstrapServers": "k:9092", "consumerGroup": "g"}
    )
    assert "kafka" in backends
    assert set(threading.enumerate()) - before == set()


async def test_the_thread_pool_is_started_in_full_at_first_use_and_stopped_on_close() -> None:
    backend = KafkaBackend(timeout=0.3, threads=3)
    before = _kafka_threads()  # other tests' threads may come and go
    client = backend.connect(KafkaConnection((f"127.0.0.1:{_closed_port()}",)))
    started = _kafka_threads() - before
    assert len(started) == 3  # a constant count: growth means a leak
    with pytest.raises(BackendUnavailable):
        await client.measure(ConsumerLag("group", "topic"))
    assert _kafka_threads() - before == started
    backend.connect(KafkaConnection(("127.0.0.1:1",)))  # another client shares the pool
    assert _kafka_threads() - before == started
    await client.aclose()
    await backend.aclose()
    for thread in started:
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive()
