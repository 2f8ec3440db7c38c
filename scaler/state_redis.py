"""The shared state store of several replicas: :class:`RedisHistory`, selected by ``--state-url``.

One Lua script per batch of facts: per key, if the stored value equals the value read, its first
sighting is kept, else the value is stored with the current time; every key gets the expiry of
the in-memory store (1 h), renewed at each read. "Now" is the Redis server's ``TIME``, so every
replica counts on one clock, and the writes are idempotent: any number of replicas writing the
same facts leave the same state. A key the store lost (a restart without persistence) starts
from the hint of the asking replica's memory, so an outage does not reset persistent lag.

Keys are ``keda-queue-scaler:state:<sha256 hex>`` (``scaler.backends.base.state_key``), each a
hash of the value read (``v``) and its first sighting in server seconds (``f``).

This module and ``scaler.backends.redis`` are the only importers of redis-py. The URL's password
never reaches a log, an error or a repr (:func:`scaler.values.mask_uri`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Final

import redis.asyncio as aioredis

from scaler.state import DEFAULT_BUDGET, DEFAULT_TTL
from scaler.values import mask_uri

PREFIX: Final = "keda-queue-scaler:state:"

# ARGV: ttl, then per key its value and its hint (seconds this replica knows it unchanged).
# TIME before the writes is fine since Redis 5 (effects replication); the answers are strings
# because Lua numbers become integers in a reply.
_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local value = ARGV[2 * i]
  local stored = redis.call('HMGET', key, 'v', 'f')
  local first
  if stored[1] == value then
    first = tonumber(stored[2])
  elseif stored[1] == false then
    first = now - tonumber(ARGV[2 * i + 1])
    redis.call('HSET', key, 'v', value, 'f', tostring(first))
  else
    first = now
    redis.call('HSET', key, 'v', value, 'f', tostring(first))
  end
  redis.call('EXPIRE', key, ttl)
  out[i] = tostring(math.max(now - first, 0))
end
return out
"""


class RedisHistory:
    """Facts shared by every replica in one Redis (standalone; ``redis://`` or ``rediss://``).

    :param url: the store's URL (password and TLS as redis-py reads them)
    :param ttl: seconds a key nobody reads lives
    :param timeout: socket timeouts, connect included (the caller's budget bounds the batch)
    """

    def __init__(self, url: str, ttl: float = DEFAULT_TTL, timeout: float = DEFAULT_BUDGET):
        self.address = mask_uri(url)
        self._ttl = max(int(ttl), 1)
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # one connection per concurrent batch at most; the store is cheap
            max_connections=32,
        )
        self._script: Any = self._client.register_script(_SCRIPT)

    async def unchanged_for(
        self, facts: Sequence[tuple[str, Hashable]], hints: Sequence[float]
    ) -> list[float]:
        """Seconds each key has held its value on the server's clock, in one round trip."""
        keys = [PREFIX + key for key, _ in facts]
        args: list[str | float] = [self._ttl]
        for (_, value), hint in zip(facts, hints, strict=True):
            args += [str(value), hint]
        replies = await self._script(keys=keys, args=args)
        return [float(r) for r in replies]

    async def aclose(self) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:
        return f"RedisHistory({self.address})"
