"""The Redis client of ``backend: redis``: every read in one round trip, errors mapped.

Each read is one call of a server-side script (``scripts``): a plain length is KEDA's script,
which checks the key type first (LLEN for a list, SCARD for a set, ZCARD for a sorted set, HLEN
for a hash, 0 for a missing key, since Redis deletes empty lists; any other type is an error
naming the type); an age or a processing list is the ``READ`` script, which also returns the
oldest element, its hash field and Redis ``TIME``. A watcher batch reads every key of a
connection with one script call. ``reply`` turns what a script returned into measurements.

This package is the only importer of redis-py.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.connection import (
    AbstractConnection,
    BlockingConnectionPool,
    Connection,
    SSLConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from scaler.backends.base import Batch, Client, Measurement
from scaler.backends.redis import reply as replies
from scaler.backends.redis.scripts import LENGTH, LENGTHS, READ, Script, plain, read_arguments
from scaler.backends.redis.trigger import RedisConnection, RedisList
from scaler.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    UnsupportedResource,
)

#: connections one client opens to one Redis at most; reads beyond wait for a free one
_MAX_CONNECTIONS: Final = 64
#: seconds an idle connection beyond the first stays open after a burst
_IDLE_CLOSE: Final = 5.0


class _IdleClosingPool(BlockingConnectionPool):
    """A blocking pool that closes the sockets of connections idle for ``_IDLE_CLOSE`` seconds,
    keeping one open.

    redis-py keeps every connection a burst opened for the pool's lifetime. A paused Redis makes
    every read wait at once, so after one pause a client would hold up to ``_MAX_CONNECTIONS``
    sockets for good (found by the fault tests under load). A closed connection stays in the
    pool and reconnects when next needed.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._released: weakref.WeakKeyDictionary[AbstractConnection, float] = (
            weakref.WeakKeyDictionary()
        )

    async def release(self, connection: AbstractConnection) -> None:
        await super().release(connection)
        now = time.monotonic()
        self._released[connection] = now
        if len(self._available_connections) <= 1:
            return  # the usual case, one connection per client: nothing to trim, no second lock
        # under the condition get_connection() takes: no connection can be handed out meanwhile
        async with self._condition:
            idle = [c for c in self._available_connections if c.is_connected]
            for stale in idle[:-1]:  # the last released stays open
                if now - self._released.get(stale, now) > _IDLE_CLOSE:
                    await stale.disconnect()


class RedisClient(Client[RedisList]):
    """One redis-py asyncio client (with its own small connection pool) for one identity."""

    def __init__(self, connection: RedisConnection, timeout: float) -> None:
        self._connection = connection
        self._where = f"redis {connection.address} db {connection.database}"
        tls: dict[str, Any] = {}
        if connection.tls:
            tls = {
                "ssl_cert_reqs": "none" if connection.unsafe_ssl else "required",
                "ssl_check_hostname": not connection.unsafe_ssl,
            }
        # A blocking pool makes a burst of distinct reads wait for a connection (bounded by the
        # timeout) instead of failing with "Too many connections".
        self._pool = _IdleClosingPool(
            max_connections=_MAX_CONNECTIONS,
            timeout=timeout,
            connection_class=SSLConnection if connection.tls else Connection,
            host=connection.host,
            port=connection.port,
            db=connection.database,
            username=connection.username,
            password=connection.password,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            # No hidden retries: the engine retries once on a fresh client, within the deadline.
            retry=Retry(NoBackoff(), 0),
            client_name="keda-queue-scaler",
            **tls,
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)

    async def measure(self, resource: RedisList) -> Measurement:
        if plain(resource):
            reply = await self._eval(LENGTH, [resource.key])
            outcome = replies.length(self._where, resource.key, reply[0], reply[1])
        else:
            keys, argv = read_arguments([resource])
            outcome = replies.read(self._where, [resource], await self._eval(READ, keys, argv))[0]
        if isinstance(outcome, UnsupportedResource):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[RedisList]) -> Batch[RedisList]:
        """Every watched resource of this connection in one script call (watchers' batches):
        KEDA's lengths script when they are all plain lengths, else the read script for all."""
        outcomes: Sequence[Measurement | UnsupportedResource]
        if all(plain(resource) for resource in resources):
            keys = [resource.key for resource in resources]
            reply = await self._eval(LENGTHS, keys)
            outcomes = [
                replies.length(self._where, key, reply[2 * i], reply[2 * i + 1])
                for i, key in enumerate(keys)
            ]
        else:
            keys, argv = read_arguments(resources)
            outcomes = replies.read(self._where, resources, await self._eval(READ, keys, argv))
        results: dict[RedisList, Measurement | BaseException] = dict(
            zip(resources, outcomes, strict=True)
        )
        return results, 1

    async def _eval(
        self, script: Script, keys: Sequence[str], argv: Sequence[str] = ()
    ) -> list[bytes | int | None]:
        try:
            try:
                reply = await self._redis.evalsha(script.sha, len(keys), *keys, *argv)
            except rexc.NoScriptError:
                # first use on this server (or after a restart): EVAL also caches the script
                reply = await self._redis.eval(script.text, len(keys), *keys, *argv)
        except rexc.RedisError as err:
            raise self._translate(err) from None
        return list(reply)

    def _translate(self, err: rexc.RedisError) -> BackendError:
        detail = str(err)
        if self._connection.password:
            detail = detail.replace(self._connection.password, "***")
        message = f"{self._where}: {detail}"
        if isinstance(err, rexc.AuthenticationError | rexc.AuthenticationWrongNumberOfArgsError):
            return BackendAuthError(message)
        if isinstance(err, rexc.NoPermissionError | rexc.AuthorizationError):
            return BackendPermissionDenied(message)
        if isinstance(err, rexc.TimeoutError):
            return BackendTimeout(message)
        if isinstance(err, rexc.ConnectionError | rexc.BusyLoadingError):
            return BackendUnavailable(message)
        if isinstance(err, rexc.ResponseError) and detail.startswith(("NOAUTH", "WRONGPASS")):
            return BackendAuthError(message)
        return BackendError(message)

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()
