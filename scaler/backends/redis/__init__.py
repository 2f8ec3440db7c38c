"""The ``redis`` backend: length of a Redis list (or set, sorted set, hash), with KEDA parity.

``trigger`` declares the parameters and applies them; ``client`` reads Redis. This module is
the registry entry.
"""

from __future__ import annotations

from scaler.backends.base import Backend
from scaler.backends.redis.client import RedisClient
from scaler.backends.redis.trigger import (
    NAME,
    RedisConnection,
    RedisList,
    RedisParams,
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


__all__ = ["RedisBackend", "RedisConnection", "RedisList", "RedisParams", "RedisTrigger"]
