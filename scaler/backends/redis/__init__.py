"""The Redis backends, one per KEDA Redis trigger type: ``redis``, ``redis-cluster`` and
``redis-sentinel`` measure a list (or set, sorted set, hash) as KEDA does, and also the age of a
list's oldest element and the work in flight in a processing list; ``redis-streams``,
``redis-cluster-streams`` and ``redis-sentinel-streams`` measure a stream's length, a consumer
group's pending entries or lag as KEDA does (with the lag corrected where Redis's is null or
wrong), and the ages of the group's entries.

``connection`` declares the connection keys and the three topologies' identities, ``params``
the list keys, ``trigger`` applies them; ``client`` reads Redis with the Lua of ``scripts``
through the ``topology`` that reaches the keys, and ``age`` turns the enqueue times it reads
into seconds. The streams have the same layers: ``stream_params``, ``stream_trigger``,
``stream_scripts``, ``stream_reply`` and ``stream_client``; both clients batch through
``reads``. This module is the registry entries.
"""

from __future__ import annotations

from typing import ClassVar, Final, TypeVar

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
from scaler.backends.redis.stream_client import StreamClient
from scaler.backends.redis.stream_params import (
    CLUSTER_STREAMS_NAME,
    SENTINEL_STREAMS_NAME,
    STREAMS_NAME,
    RedisClusterStreamsParams,
    RedisSentinelStreamsParams,
    RedisStreamsParams,
    StreamParams,
)
from scaler.backends.redis.stream_trigger import RedisStream, StreamTrigger
from scaler.backends.redis.stream_trigger import build as build_stream
from scaler.backends.redis.trigger import AgeSpec, RedisList, RedisTrigger, build
from scaler.metadata import Reading

P = TypeVar("P")
R = TypeVar("R", bound=RedisList | RedisStream)


#: the connection family of each topology: its list backend's name, so that one connection
#: profile serves a topology's list and stream backends alike
_FAMILIES: Final = {STANDALONE: NAME, CLUSTER: CLUSTER_NAME, SENTINEL: SENTINEL_NAME}


class _RedisTopology(Backend[P, AnyConnection, R]):
    """What the six Redis backends share: a topology, which names their connection family."""

    topology: ClassVar[str]
    # one script call per server reads every watched key of a connection: cheap enough to
    # watch closely
    watch_interval = 0.025

    @classmethod
    def family(cls) -> str:
        return _FAMILIES[cls.topology]


class _RedisLists(_RedisTopology[ListParams, RedisList]):
    """What the three list backends share: only the topology differs."""

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


class _RedisStreams(_RedisTopology[StreamParams, RedisStream]):
    """What the three stream backends share: only the topology differs."""

    def build(self, params: StreamParams, reading: Reading) -> StreamTrigger | None:
        return build_stream(self.topology, params, reading)

    def connect(self, connection: AnyConnection) -> StreamClient:
        return StreamClient(connection, self.timeout)


class RedisStreamsBackend(_RedisStreams):
    """``backend: redis-streams``: KEDA's ``redis-streams`` trigger, on a standalone Redis."""

    name = STREAMS_NAME
    params = RedisStreamsParams
    topology = STANDALONE


class RedisClusterStreamsBackend(_RedisStreams):
    """``backend: redis-cluster-streams``: KEDA's ``redis-cluster-streams`` trigger."""

    name = CLUSTER_STREAMS_NAME
    params = RedisClusterStreamsParams
    topology = CLUSTER


class RedisSentinelStreamsBackend(_RedisStreams):
    """``backend: redis-sentinel-streams``: KEDA's ``redis-sentinel-streams`` trigger."""

    name = SENTINEL_STREAMS_NAME
    params = RedisSentinelStreamsParams
    topology = SENTINEL


__all__ = [
    "AgeSpec",
    "RedisBackend",
    "RedisClusterBackend",
    "RedisClusterConnection",
    "RedisClusterStreamsBackend",
    "RedisConnection",
    "RedisList",
    "RedisParams",
    "RedisSentinelBackend",
    "RedisSentinelConnection",
    "RedisSentinelStreamsBackend",
    "RedisStream",
    "RedisStreamsBackend",
    "RedisTrigger",
    "StreamTrigger",
]
