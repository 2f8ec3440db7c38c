"""The ``redis`` backend: length of a Redis list (or set, sorted set, hash), with KEDA parity;
the age of a list's oldest element; the work in flight in a processing list.

``params`` declares the parameters and ``trigger`` applies them; ``client`` reads Redis with the
Lua of ``scripts``, and ``age`` turns the enqueue times it reads into seconds. This module is the
registry entry.
"""

from __future__ import annotations

from scaler.backends.base import Backend
from scaler.backends.redis.client import RedisClient
from scaler.backends.redis.params import NAME, RedisParams
from scaler.backends.redis.trigger import (
    AgeSpec,
    RedisConnection,
    RedisList,
    RedisTrigger,
    build,
)
from scaler.metadata import Reading


class RedisBackend(Backend[RedisParams, RedisConnection, RedisList]):
    """The ``redis`` entry of the backend registry."""

    name = NAME
    params = RedisParams
    # one script call reads every watched key of a connection: cheap enough to watch closely
    watch_interval = 0.025

    def build(self, params: RedisParams, reading: Reading) -> RedisTrigger | None:
        return build(params, reading)

    def connect(self, connection: RedisConnection) -> RedisClient:
        return RedisClient(connection, self.timeout)


__all__ = ["AgeSpec", "RedisBackend", "RedisConnection", "RedisList", "RedisParams", "RedisTrigger"]
