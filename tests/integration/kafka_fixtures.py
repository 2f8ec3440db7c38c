"""Kafka fixtures and helpers for tests against the real broker; imported by conftest.py.

The shared broker is a single-node Apache Kafka (KRaft) that ``scripts/brokers.sh start kafka``
runs on loopback; ``scripts/brokers.sh env`` prints the variables read here:
``SCALER_TEST_KAFKA_BOOTSTRAP`` (PLAINTEXT), ``SCALER_TEST_KAFKA_SASL_BOOTSTRAP``
(SASL_PLAINTEXT: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), the ``..._PLAIN_*`` and ``..._SCRAM_*``
test users, and ``SCALER_TEST_KAFKA_HOME`` (the jar cache, for ``kafka_broker_control``).
Without them a test is skipped, or fails when ``SCALER_REQUIRE_INTEGRATION=1``.

kafka-python is synchronous: the fixtures and helpers here call it directly (they are not the code
under test); an async test should wrap a slow helper in ``asyncio.to_thread``. Every client made
here is closed, every topic and group handed out is deleted after the test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import kafka.errors as kerr
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from bench.harness import brokers
from bench.harness.paths import REPO_ROOT

__all__ = [
    "KAFKA_BOOTSTRAP_ENV",
    "GroupFactory",
    "KafkaBrokerControl",
    "KafkaSasl",
    "SaslAuthenticationFailed",
    "TopicFactory",
    "admin_client",
    "age_of",
    "ago",
    "commit",
    "committed",
    "end_offsets",
    "kafka_admin",
    "kafka_bootstrap",
    "kafka_broker_control",
    "kafka_group",
    "kafka_sasl",
    "kafka_topic",
    "produce",
    "produce_at",
    "sasl_authenticate",
]

REQUIRE_ENV = "SCALER_REQUIRE_INTEGRATION"
KAFKA_BOOTSTRAP_ENV = "SCALER_TEST_KAFKA_BOOTSTRAP"
_PREFIX = "SCALER_TEST_KAFKA_"
_CLIENT_ID = "kqs-tests"
_TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``SCALER_REQUIRE_INTEGRATION=1`` (as conftest.py does)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)")
    pytest.skip(reason)


def _env(name: str) -> str:
    value = os.environ.get(_PREFIX + name, "")
    if not value:
        _unavailable(
            f"{_PREFIX}{name} is not set; run `scripts/brokers.sh start kafka` then "
            "`eval $(scripts/brokers.sh env)`"
        )
    return value


def _port(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


# --- the shared broker --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """``host:port`` of the shared broker's PLAINTEXT listener (``SCALER_TEST_KAFKA_BOOTSTRAP``)."""
    return _env("BOOTSTRAP")


@dataclass(frozen=True)
class KafkaSasl:
    """The shared broker's SASL_PLAINTEXT listener and its test users."""

    bootstrap: str
    plain_user: str
    plain_password: str
    scram_user: str  # for SCRAM-SHA-256 and SCRAM-SHA-512 alike
    scram_password: str

    def client_config(self, mechanism: str, password: str | None = None) -> dict[str, Any]:
        """kafka-python settings logging in with ``mechanism`` as the matching test user."""
        plain = mechanism == "PLAIN"
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": self.plain_user if plain else self.scram_user,
            "sasl_plain_password": password
            if password is not None
            else (self.plain_password if plain else self.scram_password),
        }


@pytest.fixture(scope="session")
def kafka_sasl() -> KafkaSasl:
    """The SASL listener and users, from ``SCALER_TEST_KAFKA_SASL_BOOTSTRAP`` and friends."""
    return KafkaSasl(
        bootstrap=_env("SASL_BOOTSTRAP"),
        plain_user=_env("PLAIN_USER"),
        plain_password=_env("PLAIN_PASSWORD"),
        scram_user=_env("SCRAM_USER"),
        scram_password=_env("SCRAM_PASSWORD"),
    )


def _admin(bootstrap: str) -> Any:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        request_timeout_ms=_TIMEOUT_MS,
        bootstrap_timeout_ms=_TIMEOUT_MS,
    )


@contextmanager
def admin_client(bootstrap: str) -> Iterator[Any]:
    """A short-lived kafka-python ``KafkaAdminClient``, closed on exit."""
    admin = _admin(bootstrap)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def kafka_admin(kafka_bootstrap: str) -> Iterator[Any]:
    """A kafka-python ``KafkaAdminClient`` on the PLAINTEXT listener, closed after the test.

    Do not keep it across ``kafka_broker_control.stop()``: kafka-python 3.0.12 leaves the socket
    of each refused reconnect unclosed, a ResourceWarning (an error here) once collected."""
    with admin_client(kafka_bootstrap) as admin:
        yield admin


class TopicFactory(Protocol):
    def __call__(
        self, partitions: int = 1, prefix: str = "kqs-test", configs: dict[str, str] | None = None
    ) -> str: ...


@pytest.fixture
def kafka_topic(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """``make(partitions=1, prefix="kqs-test", configs=None)`` creates a fresh topic (one replica,
    with topic ``configs`` such as ``message.timestamp.type``) and returns its name once every
    partition has a leader; every topic made is deleted after the test.
    (Short-lived admin clients: none is left open while a test stops the broker.)"""
    created: list[str] = []

    def make(
        partitions: int = 1, prefix: str = "kqs-test", configs: dict[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex}"
        spec: dict[str, Any] = {"num_partitions": partitions, "replication_factor": 1}
        if configs:
            spec["configs"] = configs
        with admin_client(kafka_bootstrap) as admin:
            admin.create_topics(
                {name: spec},
                timeout_ms=_TIMEOUT_MS,
                wait_for_metadata=True,
            )
        created.append(name)
        return name

    yield make
    if created:
        with admin_client(kafka_bootstrap) as admin:
            admin.delete_topics(created, timeout_ms=_TIMEOUT_MS)


class GroupFactory(Protocol):
    def __call__(self, prefix: str = "kqs-test") -> str: ...


@pytest.fixture
def kafka_group(kafka_bootstrap: str) -> Iterator[GroupFactory]:
    """``make(prefix="kqs-test")`` returns a fresh consumer group id; the groups that exist after
    the test are deleted (close your consumers first: a group with members cannot be)."""
    handed_out: list[str] = []

    def make(prefix: str = "kqs-test") -> str:
        group = f"{prefix}-{uuid.uuid4().hex}"
        handed_out.append(group)
        return group

    yield make
    if not handed_out:
        return
    with admin_client(kafka_bootstrap) as admin:
        results: dict[str, str] = admin.delete_groups(handed_out)
    unexpected = {
        group: result
        for group, result in results.items()
        if result not in ("OK", kerr.GroupIdNotFoundError.__name__)
    }
    assert not unexpected, f"could not delete consumer groups: {unexpected}"


# --- helpers: produce, commit, and the broker's own view of offsets ------------------------------


def kafka_metadata(
    bootstrap: str, group: str, topic: str | None = None, **extra: str
) -> dict[str, str]:
    """``backend: kafka`` trigger metadata for ``group`` (on ``topic``, when given)."""
    metadata = {"backend": "kafka", "bootstrapServers": bootstrap, "consumerGroup": group}
    if topic is not None:
        metadata["topic"] = topic
    metadata.update(extra)
    return metadata


def produce(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """Send ``count`` small records to one partition of ``topic`` and wait until all are acked."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, client_id=_CLIENT_ID, acks="all", linger_ms=5
    )
    try:
        futures = [
            producer.send(topic, value=f"kqs-{i}".encode(), partition=partition)
            for i in range(count)
        ]
        producer.flush(timeout=_TIMEOUT_MS / 1000)
        for future in futures:
            future.get(timeout=_TIMEOUT_MS / 1000)
    finally:
        producer.close(timeout=_TIMEOUT_MS / 1000)


def ago(seconds: float) -> int:
    """A record timestamp ``seconds`` before now (this machine's clock), in milliseconds."""
    return int((time.time() - seconds) * 1000)


def age_of(timestamp_ms: int) -> float:
    """Seconds since a record timestamp, on this machine's clock (the broker's, on loopback)."""
    return time.time() - timestamp_ms / 1000


def produce_at(
    bootstrap: str,
    topic: str,
    partition: int,
    timestamps_ms: Iterable[int],
    value: bytes = b"kqs",
    transactional: bool = False,
    compression: str | None = None,
) -> list[tuple[int, int]]:
    """Send one record per timestamp (CreateTime as given; a LogAppendTime topic replaces it) to
    one partition and return the broker's (offset, timestamp) of each, as it acknowledged them. With
    ``transactional``, all of them in one committed transaction (a marker follows them)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": _CLIENT_ID,
        "acks": "all",
        "compression_type": compression,
    }
    if transactional:
        config["transactional_id"] = f"kqs-test-{uuid.uuid4().hex}"
    producer = KafkaProducer(**config)
    try:
        if transactional:
            producer.init_transactions()
            producer.begin_transaction()
        futures = [
            producer.send(topic, value=value, partition=partition, timestamp_ms=timestamp)
            for timestamp in timestamps_ms
        ]
        producer.flush(timeout=_TIMEOUT_MS / 1000)
        if transactional:
            producer.commit_transaction()
        acked = [future.get(timeout=_TIMEOUT_MS / 1000) for future in futures]
        return [(int(meta.offset), int(meta.timestamp)) for meta in acked]
    finally:
        producer.close(timeout=_TIMEOUT_MS / 1000)


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``{(topic, partition): offset}`` for ``group`` without consuming anything (a
    consumer that is assigned the partitions and commits explicit offsets, like a stalled app)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=_CLIENT_ID,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=_TIMEOUT_MS + 1000,
    )
    try:
        partitions = [TopicPartition(topic, partition) for topic, partition in offsets]
        consumer.assign(partitions)
        consumer.commit(
            {
                TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                for (topic, partition), offset in offsets.items()
            }
        )
    finally:
        consumer.close(autocommit=False)


def end_offsets(bootstrap: str, topics: str | Iterable[str]) -> dict[tuple[str, int], int]:
    """The broker's log-end offset of every partition of ``topics`` (one name or several):
    ``{(topic, partition): offset}``, read by a fresh consumer that belongs to no group."""
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id=_CLIENT_ID, request_timeout_ms=_TIMEOUT_MS + 1000
    )
    try:
        tps = []
        for topic in names:
            found: set[int] | None = consumer.partitions_for_topic(topic)
            assert found, f"topic {topic} has no partitions (does it exist?)"
            tps += [TopicPartition(topic, p) for p in sorted(found)]
        ends: dict[Any, int] = consumer.end_offsets(tps, timeout_ms=_TIMEOUT_MS)
        return {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}
    finally:
        consumer.close(autocommit=False)


def committed(
    bootstrap: str, group: str, partitions: Iterable[tuple[str, int]] | None = None
) -> dict[tuple[str, int], int]:
    """The offsets the broker holds as committed for ``group``, ``{(topic, partition): offset}``,
    for ``partitions`` (all the group's when None); a partition without a committed offset, or an
    unknown group, is left out. Read with a fresh admin client."""
    spec = None if partitions is None else [TopicPartition(t, p) for t, p in partitions]
    with admin_client(bootstrap) as admin:
        result: dict[str, dict[Any, Any]] = admin.list_group_offsets({group: spec})
    return {
        (tp.topic, tp.partition): int(meta.offset)
        for tp, meta in result.get(group, {}).items()
        if meta.offset >= 0
    }


# --- a SASL login checked byte by byte ------------------------------------------------------------
# kafka-python retries a rejected login until its bootstrap times out (3.0.12 drops the broker's
# error response that arrives together with the close), so a wrong password shows there only as a
# KafkaTimeoutError. This speaks the two SASL requests itself to see the broker's own verdict.


class SaslAuthenticationFailed(Exception):
    """The broker rejected a SASL login (error code and message as the broker sent them)."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(f"error {error_code}: {message}")
        self.error_code = error_code
        self.message = message


_SASL_HANDSHAKE, _SASL_AUTHENTICATE = 17, 36
_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class _Wire:
    """Blocking, non-flexible Kafka requests (header v1) on one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.correlation_id = 0

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def call(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation_id += 1
        client_id = _CLIENT_ID.encode()
        header = struct.pack(">hhih", api_key, version, self.correlation_id, len(client_id))
        message = header + client_id + body
        self.sock.sendall(struct.pack(">i", len(message)) + message)
        (size,) = struct.unpack(">i", self._read(4))
        response = self._read(size)
        (correlation_id,) = struct.unpack(">i", response[:4])
        assert correlation_id == self.correlation_id, "response to another request"
        return response[4:]


def _nullable_string(data: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", data, at)
    at += 2
    if length < 0:
        return "", at
    return data[at : at + length].decode(), at + length


def _authenticate(wire: _Wire, token: bytes) -> bytes:
    """One SaslAuthenticate v1 round; the server's bytes, or SaslAuthenticationFailed."""
    response = wire.call(_SASL_AUTHENTICATE, 1, struct.pack(">i", len(token)) + token)
    (error_code,) = struct.unpack_from(">h", response, 0)
    message, at = _nullable_string(response, 2)
    if error_code:
        raise SaslAuthenticationFailed(error_code, message)
    (length,) = struct.unpack_from(">i", response, at)
    return response[at + 4 : at + 4 + max(length, 0)]


def _scram(wire: _Wire, mechanism: str, user: str, password: str) -> None:
    """RFC 5802 SCRAM client exchange (no channel binding)."""
    digest = _SCRAM_HASHES[mechanism]
    nonce = secrets.token_urlsafe(24)
    name = user.replace("=", "=3D").replace(",", "=2C")
    first_bare = f"n={name},r={nonce}"
    server_first = _authenticate(wire, f"n,,{first_bare}".encode()).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    assert fields["r"].startswith(nonce), "server nonce does not extend ours"
    salted = hashlib.pbkdf2_hmac(
        digest, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", digest)
    stored_key = hashlib.new(digest, client_key).digest()
    final_bare = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = hmac.digest(stored_key, auth_message, digest)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    server_final = _authenticate(
        wire, f"{final_bare},p={base64.b64encode(proof).decode()}".encode()
    ).decode()
    server_key = hmac.digest(salted, b"Server Key", digest)
    expected = base64.b64encode(hmac.digest(server_key, auth_message, digest)).decode()
    assert server_final == f"v={expected}", f"bad server signature: {server_final}"


def sasl_authenticate(
    bootstrap: str, mechanism: str, user: str, password: str, timeout: float = 10.0
) -> None:
    """Log in to the SASL_PLAINTEXT listener at ``bootstrap`` with ``mechanism`` (PLAIN,
    SCRAM-SHA-256 or SCRAM-SHA-512); returns if the broker accepts the credentials, raises
    ``SaslAuthenticationFailed`` with the broker's error if it rejects them."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        wire = _Wire(sock)
        response = wire.call(
            _SASL_HANDSHAKE, 1, struct.pack(">h", len(mechanism)) + mechanism.encode()
        )
        (error_code,) = struct.unpack_from(">h", response, 0)
        if error_code:
            raise SaslAuthenticationFailed(error_code, f"SaslHandshake refused {mechanism}")
        if mechanism == "PLAIN":
            _authenticate(wire, b"\0" + user.encode() + b"\0" + password.encode())
        else:
            _scram(wire, mechanism, user, password)


# --- stopping and starting the shared broker ------------------------------------------------------


class KafkaBrokerControl:
    """Stops and starts the shared broker through ``scripts/brokers.sh`` (same jars, same data)."""

    def __init__(self, bootstrap: str, sasl_bootstrap: str, home: str) -> None:
        self.bootstrap = bootstrap
        self.port = _port(bootstrap)
        self.env = dict(os.environ)
        # brokers.sh must find the broker this test run uses: the same jars and ports.
        self.env["SCALER_KAFKA_HOME"] = home
        self.env["SCALER_TEST_KAFKA_PORT"] = str(self.port)
        self.env["SCALER_TEST_KAFKA_SASL_PORT"] = str(_port(sasl_bootstrap))
        self.env.pop("SCALER_KAFKA_RESET", None)
        self.stopped = False

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    async def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 30 s) and check its port is closed."""
        self.stopped = True
        await brokers.run("stop", "kafka", self.env)
        if self.accepts_connections():
            raise RuntimeError(
                f"{self.bootstrap} still accepts connections after `brokers.sh stop kafka`: "
                "that broker is not this checkout's (started elsewhere?)"
            )

    async def start(self) -> None:
        """Start the broker again (same data) and wait until it serves requests."""
        await brokers.run("start", "kafka", self.env)
        self.stopped = False

    def ensure_running(self) -> None:
        """Synchronous start for teardown, when a test left the broker stopped."""
        if not self.stopped and self.accepts_connections():
            return
        subprocess.run(
            brokers.argv("start", "kafka"),
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            check=True,
            timeout=brokers.COMMAND_TIMEOUT,
        )
        self.stopped = False


@pytest.fixture
async def kafka_broker_control(
    kafka_bootstrap: str, kafka_sasl: KafkaSasl
) -> AsyncIterator[KafkaBrokerControl]:
    """``await control.stop()`` / ``await control.start()`` take the shared broker down and bring
    it back (data kept); after the test it is running again whatever happened. Request it after
    ``kafka_topic``/``kafka_group`` so that it is torn down (restarting the broker) before them."""
    control = KafkaBrokerControl(kafka_bootstrap, kafka_sasl.bootstrap, _env("HOME"))
    try:
        yield control
    finally:
        await asyncio.to_thread(control.ensure_running)
