"""The AMQP client of ``backend: rabbitmq``: passive declares, and broker errors mapped.

A passive ``queue.declare`` on a channel opened for that one read and closed after it. Its
``message-count`` is the number of messages *ready* for delivery; messages delivered to a
consumer but not yet acknowledged are invisible to AMQP, and so are rates. A missing queue makes
the broker close the channel (404), never the connection. One connection per vhost serves every
trigger of a connection identity; it is opened lazily under a lock and reopened after a failure.
Any failure other than a clean channel-level refusal closes that connection, so no channel or
connection can leak (keda#6266).

This module is the package's only importer of aio-pika and aiormq.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine
from typing import Any

import aio_pika
import aio_pika.abc
import aiormq.exceptions as amqp_errors

from scaler.backends.base import Client, Measurement
from scaler.backends.rabbitmq.trigger import CLIENT_NAME, RabbitConnection, RabbitQueue
from scaler.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    TargetNotFound,
    UnsupportedResource,
)

log = logging.getLogger(__name__)


def sasl_external(connection: RabbitConnection) -> bool:
    """Whether to authenticate with the TLS client certificate (SASL EXTERNAL), as KEDA does:
    TLS with a certificate and no password anywhere (a user name alone, ``CN=...@``, is the
    certificate's identity, not a login)."""
    return connection.tls and connection.cert is not None and connection.password is None


class AmqpClient(Client[RabbitQueue]):
    """Passive declares over one aio-pika connection per vhost, a fresh channel per query."""

    def __init__(self, connection: RabbitConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._links: dict[str, aio_pika.abc.AbstractConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def measure(self, resource: RabbitQueue) -> Measurement:
        assert not resource.use_regex  # refused at parse time
        link = await self._link(resource.vhost)
        where = f"{self._connection.where} vhost {resource.vhost!r} queue {resource.name!r}"
        try:
            # aiormq's channel, not aio-pika's: aio-pika registers a callback per channel on the
            # connection and never removes it when the broker closes the channel (a missing
            # queue), so every failed look-up would leak on the shared connection
            transport = link.transport
            if transport is None:
                raise BackendUnavailable(f"{where}: connection closed")
            channel = await transport.connection.channel(publisher_confirms=False)
            declared = await channel.queue_declare(resource.name, passive=True)
            await channel.close()
        except amqp_errors.ChannelClosed as err:
            # a channel-level refusal: the broker closed that channel, the connection is fine
            raise _channel_error(err, where) from None
        except BaseException as err:
            # Lost connection, timeout, cancellation: the channel may still be open on the
            # broker. Dropping the whole connection frees it there (and the next query reopens).
            self._drop(resource.vhost, link)
            if isinstance(err, Exception):
                raise _connection_error(err, where) from None
            raise
        ready = int(declared.message_count or 0)
        item: dict[str, float | str] = {"queue": resource.name, "messages_ready": float(ready)}
        return Measurement(float(ready), {"protocol": "amqp", "messages_ready": ready}, (item,))

    async def _link(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        link = self._links.get(vhost)
        if link is not None and not link.is_closed:
            return link
        lock = self._locks.setdefault(vhost, asyncio.Lock())
        async with lock:
            link = self._links.get(vhost)
            if link is not None and not link.is_closed:
                return link
            if link is not None:
                self._drop(vhost, link)
            if self._closed:
                raise BackendUnavailable(f"{self._connection.where}: client closed")
            return await self._keep(vhost, await self._open_shielded(vhost))

    async def _open_shielded(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        """Open a connection that a cancelled caller cannot leak.

        aio-pika opens the AMQP connection and then waits for its reader task to start; a
        cancellation landing in between (the read's deadline, just as a paused broker answers)
        drops an open connection nobody holds. The opening runs in a task of its own, bounded
        by the client's timeout; a caller that gives up leaves it to close what it opens.
        """
        opening = asyncio.get_running_loop().create_task(self._open(vhost))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            self._in_background(_close_when_open(opening))
            raise

    async def _keep(
        self, vhost: str, link: aio_pika.abc.AbstractConnection
    ) -> aio_pika.abc.AbstractConnection:
        if self._closed:
            # aclose() ran while this connection was being opened: it must not outlive it
            await _close_link(link)
            raise BackendUnavailable(f"{self._connection.where}: client closed")
        self._links[vhost] = link
        return link

    async def _open(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        c = self._connection
        extra: dict[str, Any] = {}
        if c.tls:
            if self._ssl is None:
                self._ssl = c.ssl_context()
            extra.update(ssl=True, ssl_context=self._ssl)
            if sasl_external(c):
                extra["auth"] = "external"
        where = f"{c.where} vhost {vhost!r}"
        try:
            link: aio_pika.abc.AbstractConnection = await aio_pika.connect(
                host=c.host,
                port=c.port,
                # the AMQP URI defaults, as KEDA's client applies them
                login=c.username if c.username is not None else "guest",
                password=c.password if c.password is not None else "guest",
                virtualhost=vhost,
                timeout=self._timeout,
                client_properties={"connection_name": CLIENT_NAME},
                **extra,
            )
        except Exception as err:  # noqa: BLE001 - every failure becomes a BackendError
            raise _connection_error(err, where) from None
        return link

    def _drop(self, vhost: str, link: aio_pika.abc.AbstractConnection) -> None:
        if self._links.get(vhost) is link:
            del self._links[vhost]
        # closed in the background: this may run while the caller is being cancelled
        self._in_background(_close_link(link))

    def _in_background(self, closing: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        self._closed = True
        links = list(self._links.values())
        self._links.clear()
        await asyncio.gather(*(_close_link(link) for link in links))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close_when_open(opening: asyncio.Task[aio_pika.abc.AbstractConnection]) -> None:
    try:
        link = await opening
    except Exception:  # noqa: BLE001 - it failed to open: nothing to close
        return
    await _close_link(link)


async def _close_link(link: aio_pika.abc.AbstractConnection) -> None:
    try:
        await link.close()
    except Exception:  # a broken connection may fail to close; it is dropped anyway
        log.debug("closing an AMQP connection failed", exc_info=True)


def _reply_text(err: BaseException) -> str:
    # aiormq puts the broker's reply text (or code and text) in args; never credentials
    texts = [str(a) for a in err.args if isinstance(a, str | int)]
    return " ".join(texts) or type(err).__name__


def _channel_error(err: amqp_errors.ChannelClosed, where: str) -> BackendError:
    detail = _reply_text(err)
    if isinstance(err, amqp_errors.ChannelNotFoundEntity):
        return TargetNotFound(f"{where}: queue not found ({detail})")
    if isinstance(err, amqp_errors.ChannelAccessRefused):
        return BackendPermissionDenied(f"{where}: {detail}")
    if isinstance(err, amqp_errors.ChannelLockedResource):
        return UnsupportedResource(
            f"{where}: {detail} (an exclusive queue of another connection cannot be declared "
            "passively; use the management API)"
        )
    return BackendError(f"{where}: {detail}")


def _connection_error(err: Exception, where: str) -> BackendError:
    detail = _reply_text(err)
    if isinstance(err, TimeoutError):
        return BackendTimeout(f"{where}: no answer in time")
    if isinstance(err, amqp_errors.ProbableAuthenticationError | amqp_errors.AuthenticationError):
        return BackendAuthError(f"{where}: {detail}")
    if isinstance(err, amqp_errors.ConnectionNotAllowed) or (
        # aiormq reports a Connection.Close in answer to Connection.Open (the broker refusing
        # the vhost: 530 NOT_ALLOWED, missing or no access) as an unexpected frame
        isinstance(err, amqp_errors.InvalidFrameError) and "Connection.Close" in detail
    ):
        return BackendPermissionDenied(
            f"{where}: the broker refused the vhost (it does not exist, or the user has no "
            "permissions on it)"
        )
    if isinstance(err, amqp_errors.ConnectionClosed) and err.args and err.args[0] == 530:
        return BackendPermissionDenied(f"{where}: {detail}")
    if isinstance(
        err,
        amqp_errors.AMQPConnectionError
        | amqp_errors.ChannelInvalidStateError
        | ConnectionError
        | OSError
        | RuntimeError,
    ):
        return BackendUnavailable(f"{where}: {detail}")
    return BackendError(f"{where}: {detail}")
