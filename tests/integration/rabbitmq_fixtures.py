"""RabbitMQ fixtures and helpers for tests against the real broker; imported by conftest.py.

The shared node is the project-owned ``kqs@localhost`` that ``scripts/brokers.sh start rabbitmq``
runs on loopback; ``scripts/brokers.sh env`` prints the variables read here:
``SCALER_TEST_AMQP_URL`` (AMQP, vhost ``/``) and ``SCALER_TEST_RABBITMQ_HTTP`` (the management API),
both with the test user, and ``SCALER_TEST_RABBITMQ_VHOST`` (a second vhost the user may use).
Without them a test is skipped, or fails when ``SCALER_REQUIRE_INTEGRATION=1``.

Everything here talks to RabbitMQ *without* the code under test: queues are created, inspected
and deleted through the management API (:class:`RabbitApi`, RabbitMQ's own numbers), messages are
published and consumed with aio-pika (:class:`AmqpPeer`). Every queue handed out has a unique name
and is deleted after the test; every user created is deleted; every connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, Protocol
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import aio_pika.abc
import httpx
import pytest

from bench.harness import brokers

__all__ = [
    "AMQP_URL_ENV",
    "RABBITMQ_HTTP_ENV",
    "AmqpPeer",
    "Held",
    "QueueFactory",
    "QueueRef",
    "RabbitApi",
    "RabbitBrokerControl",
    "RabbitMetadata",
    "UserFactory",
    "amqp_peer",
    "amqp_url",
    "rabbit_queue",
    "rabbit_user",
    "rabbitmq_api",
    "rabbitmq_broker_control",
    "rabbitmq_http",
    "rabbitmq_metadata",
    "rabbitmq_vhost",
]

REQUIRE_ENV = "SCALER_REQUIRE_INTEGRATION"
AMQP_URL_ENV = "SCALER_TEST_AMQP_URL"
RABBITMQ_HTTP_ENV = "SCALER_TEST_RABBITMQ_HTTP"
RABBITMQ_VHOST_ENV = "SCALER_TEST_RABBITMQ_VHOST"
#: how long the management API may take to show a change (statistics every second)
SETTLE_TIMEOUT = 10.0


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``SCALER_REQUIRE_INTEGRATION=1`` (as conftest.py does)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 turns this skip into a failure)")
    pytest.skip(reason)


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        _unavailable(
            f"{name} is not set; run `scripts/brokers.sh start rabbitmq` then "
            "`eval $(scripts/brokers.sh env)`"
        )
    return value


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """``amqp://user:password@127.0.0.1:port/%2F`` of the shared node."""
    return _env(AMQP_URL_ENV)


@pytest.fixture(scope="session")
def rabbitmq_http() -> str:
    """``http://user:password@127.0.0.1:port`` of the shared node's management API."""
    return _env(RABBITMQ_HTTP_ENV)


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> str:
    """A vhost other than ``/`` on which the test user has every permission."""
    return os.environ.get(RABBITMQ_VHOST_ENV) or "kqs-test"


@dataclass(frozen=True)
class QueueRef:
    """A queue in a vhost."""

    vhost: str
    name: str


# --- the management API, RabbitMQ's own view ---------------------------------------------------


class RabbitApi:
    """The management API over httpx: RabbitMQ's own numbers, read without the code under test."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 15672
        self.base_url = f"{parts.scheme}://{self.host}:{self.port}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url, auth=(self.user, self.password), timeout=10.0
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _vhost(vhost: str) -> str:
        return quote(vhost, safe="")

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        if response.status_code >= 400 and not (method == "DELETE" and response.status_code == 404):
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response

    async def get(self, path: str, **params: str) -> Any:
        return (await self._call("GET", path, params=params or None)).json()

    async def create_queue(self, queue: QueueRef, durable: bool = True, kind: str = "") -> None:
        """Declare ``queue``; ``kind`` is its ``x-queue-type`` (``quorum``...), none: classic."""
        path = f"/api/queues/{self._vhost(queue.vhost)}/{quote(queue.name, safe='')}"
        arguments = {"x-queue-type": kind} if kind else {}
        await self._call(
            "PUT", path, json={"durable": durable, "auto_delete": False, "arguments": arguments}
        )

    async def delete_queue(self, queue: QueueRef) -> None:
        path = f"/api/queues/{self._vhost(queue.vhost)}/{quote(queue.name, safe='')}"
        await self._call("DELETE", path)

    async def queue(self, queue: QueueRef) -> dict[str, Any]:
        path = f"/api/queues/{self._vhost(queue.vhost)}/{quote(queue.name, safe='')}"
        result: dict[str, Any] = await self.get(path)
        return result

    async def queue_and_clock(self, queue: QueueRef) -> tuple[dict[str, Any], float]:
        """The queue's details, and the broker's clock when it answered (its Date header)."""
        path = f"/api/queues/{self._vhost(queue.vhost)}/{quote(queue.name, safe='')}"
        response = await self._call("GET", path)
        return response.json(), parsedate_to_datetime(response.headers["date"]).timestamp()

    async def settled(self, queue: QueueRef, **expected: int) -> dict[str, Any]:
        """The queue's details once they show ``expected`` (e.g. ``messages_unacknowledged=4``).

        The management API publishes statistics every second; polling until the expected state
        shows (and then reading once more) makes "RabbitMQ's own number" a settled one.
        """
        deadline = time.monotonic() + SETTLE_TIMEOUT
        details: dict[str, Any] = {}
        while time.monotonic() < deadline:
            details = await self.queue(queue)
            if "messages" in details and all(details.get(k) == v for k, v in expected.items()):
                return details
            await asyncio.sleep(0.1)
        raise AssertionError(f"{queue} never showed {expected}; last: {_counts(details)}")

    async def queues(self, vhost: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.get(f"/api/queues/{self._vhost(vhost)}")
        return result

    async def create_user(self, name: str, password: str, vhosts: tuple[str, ...] = ()) -> None:
        await self._call(
            "PUT", f"/api/users/{quote(name, safe='')}", json={"password": password, "tags": ""}
        )
        for vhost in vhosts:
            await self._call(
                "PUT",
                f"/api/permissions/{self._vhost(vhost)}/{quote(name, safe='')}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            )

    async def delete_user(self, name: str) -> None:
        await self._call("DELETE", f"/api/users/{quote(name, safe='')}")

    async def connections_of(self, user: str) -> list[dict[str, Any]]:
        """Open connections of ``user`` (with their ``channels`` count)."""
        everything: list[dict[str, Any]] = await self.get("/api/connections")
        return [c for c in everything if c.get("user") == user]

    async def channels_of(self, user: str) -> list[dict[str, Any]]:
        everything: list[dict[str, Any]] = await self.get("/api/channels")
        return [c for c in everything if c.get("user") == user]


def _counts(details: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("messages", "messages_ready", "messages_unacknowledged", "state")
    return {k: details.get(k) for k in keys}


@pytest.fixture
async def rabbitmq_api(rabbitmq_http: str) -> AsyncIterator[RabbitApi]:
    """A management API client of the shared node, closed after the test."""
    api = RabbitApi(rabbitmq_http)
    try:
        yield api
    finally:
        await api.aclose()


class QueueFactory(Protocol):
    async def __call__(
        self, prefix: str = "kqs-test", vhost: str = "/", durable: bool = True, kind: str = ""
    ) -> QueueRef: ...


@pytest.fixture
async def rabbit_queue(rabbitmq_api: RabbitApi) -> AsyncIterator[QueueFactory]:
    """``await make(prefix, vhost, kind=...)``: a new queue with a unique name (classic unless
    ``kind`` says ``quorum``...), deleted after the test."""
    made: list[QueueRef] = []

    async def make(
        prefix: str = "kqs-test", vhost: str = "/", durable: bool = True, kind: str = ""
    ) -> QueueRef:
        queue = QueueRef(vhost, f"{prefix}-{uuid.uuid4().hex}")
        made.append(queue)
        await rabbitmq_api.create_queue(queue, durable=durable, kind=kind)
        await rabbitmq_api.settled(queue)  # statistics exist: the API can count it
        return queue

    yield make
    for queue in made:
        await rabbitmq_api.delete_queue(queue)


class UserFactory(Protocol):
    async def __call__(self, vhosts: tuple[str, ...] = ("/",)) -> tuple[str, str]: ...


@pytest.fixture
async def rabbit_user(rabbitmq_api: RabbitApi) -> AsyncIterator[UserFactory]:
    """``await make(vhosts)``: a new user (name, password) with full permissions on ``vhosts``.

    Deleted after the test; request it before ``serve`` so that the scaler's connections are
    closed first (deleting a user force-closes its connections).
    """
    made: list[str] = []

    async def make(vhosts: tuple[str, ...] = ("/",)) -> tuple[str, str]:
        name = f"kqs-user-{uuid.uuid4().hex[:12]}"
        password = f"pw-{uuid.uuid4().hex[:12]}"
        made.append(name)
        await rabbitmq_api.create_user(name, password, vhosts)
        return name, password

    yield make
    for name in made:
        await rabbitmq_api.delete_user(name)


# --- an AMQP peer: publisher and consumers -------------------------------------------------------


@dataclass
class Held:
    """Messages delivered to a consumer and not acknowledged yet (held by an open channel)."""

    channel: aio_pika.abc.AbstractChannel
    messages: list[aio_pika.abc.AbstractIncomingMessage] = field(default_factory=list)

    async def ack(self, count: int) -> None:
        for _ in range(count):
            await self.messages.pop(0).ack()


class AmqpPeer:
    """aio-pika connections (one per vhost) acting as the applications around the queue."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._login = unquote(parts.username or "guest")
        self._password = unquote(parts.password or "guest")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5672
        self._links: dict[str, aio_pika.abc.AbstractConnection] = {}
        self._held: list[Held] = []
        self._tasks: list[asyncio.Task[Any]] = []

    async def link(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        link = self._links.get(vhost)
        if link is None or link.is_closed:
            link = await aio_pika.connect(
                host=self._host,
                port=self._port,
                login=self._login,
                password=self._password,
                virtualhost=vhost,
                client_properties={"connection_name": "kqs-tests"},
            )
            self._links[vhost] = link
        return link

    async def publish(self, queue: QueueRef, count: int, timestamp: int | None = None) -> None:
        """Publish ``count`` persistent messages, confirmed by the broker, with ``timestamp``
        (seconds since the epoch) as their AMQP timestamp property, or none."""
        stamp = None
        if timestamp is not None:
            stamp = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        channel = await (await self.link(queue.vhost)).channel(publisher_confirms=True)
        try:
            for i in range(count):
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        f"m{i}".encode(),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        timestamp=stamp,
                    ),
                    routing_key=queue.name,
                )
        finally:
            await channel.close()

    async def take(self, queue: QueueRef, count: int) -> Held:
        """Have ``count`` messages delivered to a consumer that does not acknowledge them."""
        channel = await (await self.link(queue.vhost)).channel()
        await channel.set_qos(prefetch_count=count)
        held = Held(channel)
        self._held.append(held)
        got_all = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            held.messages.append(message)
            if len(held.messages) >= count:
                got_all.set()

        amqp_queue = await channel.get_queue(queue.name, ensure=False)
        tag = await amqp_queue.consume(on_message, no_ack=False)
        await asyncio.wait_for(got_all.wait(), timeout=10)
        # no more deliveries (an ack would otherwise make room for the next message); the
        # delivered messages stay unacknowledged on the open channel
        await amqp_queue.cancel(tag)
        return held

    def steady_traffic(self, queue: QueueRef, rate: float) -> Callable[[], Any]:
        """Publish ``rate`` messages/s and consume (with ack) as fast; returns an async stopper."""
        stop = asyncio.Event()

        async def publisher() -> int:
            channel = await (await self.link(queue.vhost)).channel(publisher_confirms=False)
            loop = asyncio.get_running_loop()
            sent, tick = 0, loop.time()
            try:
                while not stop.is_set():
                    await channel.default_exchange.publish(
                        aio_pika.Message(b"tick"), routing_key=queue.name
                    )
                    sent += 1
                    tick += 1 / rate
                    await asyncio.sleep(max(0.0, tick - loop.time()))
            finally:
                await channel.close()
            return sent

        async def consumer() -> None:
            channel = await (await self.link(queue.vhost)).channel()
            await channel.set_qos(prefetch_count=50)
            amqp_queue = await channel.get_queue(queue.name, ensure=False)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()

            tag = await amqp_queue.consume(on_message)
            try:
                await stop.wait()
            finally:
                await amqp_queue.cancel(tag)
                await channel.close()

        publishing = asyncio.create_task(publisher())
        consuming = asyncio.create_task(consumer())
        self._tasks.extend((publishing, consuming))

        async def stopper() -> int:
            stop.set()
            await consuming
            return await publishing

        return stopper

    async def aclose(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # the broker may have been restarted under these: closing then fails, harmlessly
        for held in self._held:
            if not held.channel.is_closed:
                with contextlib.suppress(Exception):
                    await held.channel.close()
        for link in self._links.values():
            with contextlib.suppress(Exception):
                await link.close()


@pytest.fixture
async def amqp_peer(amqp_url: str) -> AsyncIterator[AmqpPeer]:
    """An AMQP publisher/consumer of the shared node; every channel and connection closed after."""
    peer = AmqpPeer(amqp_url)
    try:
        yield peer
    finally:
        await peer.aclose()


# --- trigger metadata ----------------------------------------------------------------------------


class RabbitMetadata(Protocol):
    def __call__(
        self,
        queue: QueueRef | str,
        protocol: str = "amqp",
        *,
        vhost: str | None = None,
        user: str | None = None,
        password: str | None = None,
        **extra: str,
    ) -> dict[str, str]: ...


@pytest.fixture
def rabbitmq_metadata(amqp_url: str, rabbitmq_http: str) -> RabbitMetadata:
    """KEDA-style ``rabbitmq`` trigger metadata for the shared node.

    ``protocol`` picks the host: ``amqp://user:pw@host:port/<vhost>`` or
    ``http://user:pw@host:mgmtport/<vhost>``; ``vhost`` defaults to the queue's.
    """

    def make(
        queue: QueueRef | str,
        protocol: str = "amqp",
        *,
        vhost: str | None = None,
        user: str | None = None,
        password: str | None = None,
        **extra: str,
    ) -> dict[str, str]:
        ref = queue if isinstance(queue, QueueRef) else QueueRef("/", queue)
        parts = urlsplit(amqp_url if protocol == "amqp" else rabbitmq_http)
        login = quote(user if user is not None else unquote(parts.username or ""), safe="")
        secret = quote(password if password is not None else unquote(parts.password or ""), safe="")
        path = quote(vhost if vhost is not None else ref.vhost, safe="")
        host = f"{parts.scheme}://{login}:{secret}@{parts.hostname}:{parts.port}/{path}"
        return {"backend": "rabbitmq", "host": host, "queueName": ref.name, **extra}

    return make


# --- stopping and starting the shared node -------------------------------------------------------


class RabbitBrokerControl:
    """Stops and starts the shared node through ``scripts/brokers.sh`` (as a developer would)."""

    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        await brokers.run("stop", "rabbitmq")

    async def start(self) -> None:
        await brokers.run("start", "rabbitmq")
        self.stopped = False


@pytest.fixture
async def rabbitmq_broker_control(amqp_url: str) -> AsyncIterator[RabbitBrokerControl]:
    """Stop/start the shared node; it is running again when the test ends, whatever happened."""
    control = RabbitBrokerControl()
    try:
        yield control
    finally:
        if control.stopped:
            await control.start()
