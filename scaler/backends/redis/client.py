"""The Redis client of ``backend: redis``: key lengths in one round trip, errors mapped.

The length is read by a server-side script that checks the key type first, exactly as KEDA
does: LLEN for a list, SCARD for a set, ZCARD for a sorted set, HLEN for a hash, 0 for a missing
key (Redis deletes empty lists); any other type is an error naming the type. A watcher batch
reads every key of a connection with one script call.

This package is the only importer of redis-py.
"""

from __future__ import annotations

import hashlib
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

# TYPE then the matching length command, atomically and in one round trip (KEDA's script,
# returning the type too so that an unsupported type can be named in the error).
_LENGTH_SCRIPT: Final = """
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'list' or t == 'none' then return {t, redis.call('LLEN', KEYS[1])} end
if t == 'set' then return {t, redis.call('SCARD', KEYS[1])} end
if t == 'zset' then return {t, redis.call('ZCARD', KEYS[1])} end
if t == 'hash' then return {t, redis.call('HLEN', KEYS[1])} end
return {t, -1}
"""
_LENGTH_SHA: Final = hashlib.sha1(_LENGTH_SCRIPT.encode(), usedforsecurity=False).hexdigest()
# The same for every key it is given, in one command: a watcher batch costs Redis one call
# however many lists are watched on the connection.
_LENGTHS_SCRIPT: Final = """
local out = {}
for i, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key)['ok']
  local n = -1
  if t == 'list' or t == 'none' then n = redis.call('LLEN', key)
  elseif t == 'set' then n = redis.call('SCARD', key)
  elseif t == 'zset' then n = redis.call('ZCARD', key)
  elseif t == 'hash' then n = redis.call('HLEN', key) end
  out[2 * i - 1] = t
  out[2 * i] = n
end
return out
"""
_LENGTHS_SHA: Final = hashlib.sha1(_LENGTHS_SCRIPT.encode(), usedforsecurity=False).hexdigest()


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
        reply = await self._eval(_LENGTH_SHA, _LENGTH_SCRIPT, [resource.key])
        outcome = self._length(resource.key, reply[0], reply[1])
        if isinstance(outcome, UnsupportedResource):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[RedisList]) -> Batch[RedisList]:
        """Every watched key of this connection in one script call (watchers' batches)."""
        keys = [resource.key for resource in resources]
        reply = await self._eval(_LENGTHS_SHA, _LENGTHS_SCRIPT, keys)
        results: dict[RedisList, Measurement | BaseException] = {}
        for index, resource in enumerate(resources):
            results[resource] = self._length(keys[index], reply[2 * index], reply[2 * index + 1])
        return results, 1

    def _length(
        self, key: str, key_type: bytes | int, length: bytes | int
    ) -> Measurement | UnsupportedResource:
        kind = _decode(key_type)
        if int(length) < 0:
            return UnsupportedResource(
                f"{self._where}: key {key!r} is a {kind}, not a list, set, sorted set or hash"
            )
        return Measurement(float(int(length)), {"type": kind})

    async def _eval(self, sha: str, script: str, keys: Sequence[str]) -> list[bytes | int]:
        try:
            try:
                reply = await self._redis.evalsha(sha, len(keys), *keys)
            except rexc.NoScriptError:
                # first use on this server (or after a restart): EVAL also caches the script
                reply = await self._redis.eval(script, len(keys), *keys)
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


def _decode(value: bytes | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
