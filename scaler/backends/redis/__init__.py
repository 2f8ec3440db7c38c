"""The Redis backends, one per KEDA Redis trigger type: ``redis``, ``redis-cluster`` and
``redis-sentinel`` measure a list (or set, sorted set, hash) as KEDA does, and also the age of a
list's oldest element and the work in flight in a processing list.

``connection`` declares the connection keys and the three topologies' identities, ``params``
the list keys, ``trigger`` applies them; ``client`` reads Redis with the Lua of ``scripts``
through the ``topology`` that reaches the keys, and ``age`` turns the enqueue times it reads
into seconds. This module is the registry entries.
"""

from __future__ import annotations

from typing import ClassVar

from scaler.backends.base import Backend
from scaler.backends.redis.client import RedisClient
from scaler.backends.redis.connection import (
    CLUSTER,
    SENTINEL,
    STANDALONE,
    AnyConnection,
    RedisClusterConnection,
    RedisConnection,
    RedisSentinelConnection,
)
from scaler.backends.redis.params import (
    CLUSTER_NAME,
    NAME,
    SENTINEL_NAME,
    ListParams,
    RedisClusterParams,
    RedisParams,
    RedisSentinelParams,
)
from scaler.backends.redis.trigger import AgeSpec, RedisList, RedisTrigger, build
from scaler.metadata import Reading


class _RedisLists(Backend[ListParams, AnyConnection, RedisList]):
    """What the three list backends share: only the topology differs."""

    topology: ClassVar[str]
    # one script call per server reads every watched key of a connection: cheap enough to
    # watch closely
    watch_interval = 0.025

    def build(self, params: ListParams, reading: Reading) -> RedisTrigger | None:
        return build(self.topology, params, reading)

    def connect(self, connection: AnyConnection) -> RedisClient:
        return RedisClient(connection, self.timeout)


class RedisBackend(_RedisLists):
    """``backend: redis``: KEDA's ``redis`` trigger, on a standalone Redis."""

    name = NAME
    params = RedisParams
    topology = STANDALONE


class RedisClusterBackend(_RedisLists):
    """``backend: redis-cluster``: KEDA's ``redis-cluster`` trigger."""

    name = CLUSTER_NAME
    params = RedisClusterParams
    topology = CLUSTER


class RedisSentinelBackend(_RedisLists):
    """``backend: redis-sentinel``: KEDA's ``redis-sentinel`` trigger."""

    name = SENTINEL_NAME
    params = RedisSentinelParams
    topology = SENTINEL


__all__ = [
    "AgeSpec",
    "RedisBackend",
    "RedisClusterBackend",
    "RedisClusterConnection",
    "RedisConnection",
    "RedisList",
    "RedisParams",
    "RedisSentinelBackend",
    "RedisSentinelConnection",
    "RedisTrigger",
]
