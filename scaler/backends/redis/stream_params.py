"""The declared parameters of the Redis Streams backends (``redis-streams``,
``redis-cluster-streams``, ``redis-sentinel-streams``): KEDA v2.20.2's keys of
``redis_streams_scaler.go`` with KEDA's names, defaults and meanings, then this scaler's own (the
two ages, work in flight, and many streams per trigger).

Each backend's parameters are its connection keys (``connection``) plus :class:`StreamParams` and
the keys of several keys per trigger (``keyset.ManyParams``).
Which measure a trigger takes (KEDA's ``Validate()``: stream length, pending entries or lag, or
one of our ages) and the rules between keys are ``stream_trigger.build``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from scaler.backends.redis.connection import DatabaseParams, EndpointParams, SentinelParams
from scaler.backends.redis.keyset import ManyParams
from scaler.metadata import param
from scaler.values import boolean, integer, non_negative, number, positive, resource_name

STREAMS_NAME: Final = "redis-streams"
CLUSTER_STREAMS_NAME: Final = "redis-cluster-streams"
SENTINEL_STREAMS_NAME: Final = "redis-sentinel-streams"

#: KEDA's measures, chosen by the keys given (``Validate()``); the names are ours, for messages
STREAM_LENGTH: Final = "streamLength"
PENDING_ENTRIES: Final = "pendingEntriesCount"
LAG: Final = "lagCount"
#: seconds the first entry the group has not yet delivered has waited
OLDEST_UNDELIVERED_AGE: Final = "OldestUndeliveredAge"
#: seconds the oldest entry delivered but not yet acknowledged has waited
OLDEST_PENDING_AGE: Final = "OldestPendingAge"
AGE_MODES: Final = (OLDEST_UNDELIVERED_AGE, OLDEST_PENDING_AGE)


@dataclass(frozen=True, kw_only=True)
class StreamParams:
    """KEDA's stream keys (``redis-streams``, ``redis-cluster-streams``,
    ``redis-sentinel-streams``), and the age and in-flight keys of this scaler."""

    stream: str = param(
        "stream",
        resource_name,
        doc="the stream to measure; a comma list of streams (`a,b,c`), or with `useGlob` a "
        "pattern (`orders:*`), whose measures combine by `operation`",
    )
    consumer_group: str | None = param(
        "consumerGroup",
        resource_name,
        default=None,
        doc="the consumer group: given, the measure is its lag (with `lagCount`) or its pending "
        "entries; absent, the stream's length",
    )
    pending_entries_count: int = param(
        "pendingEntriesCount",
        integer,
        default=5,
        check=positive,
        doc="target pending entries per replica (integer > 0): the measure with `consumerGroup` "
        "and no `lagCount`",
    )
    stream_length: int = param(
        "streamLength",
        integer,
        default=5,
        check=positive,
        doc="target stream length per replica (integer > 0): the measure without `consumerGroup`",
    )
    lag_count: int | None = param(
        "lagCount",
        integer,
        default=None,
        check=positive,
        doc="target lag per replica (integer > 0): with `consumerGroup`, the measure is the "
        "group's lag, the entries not yet delivered to it",
    )
    activation_lag_count: int = param(
        "activationLagCount",
        integer,
        default=0,
        check=non_negative,
        doc="active iff the measure (length, pending entries or lag) > this (integer ≥ 0)",
    )
    mode: str | None = param(
        "mode",
        default=None,
        choices=AGE_MODES,
        shown_default="KEDA's measure",
        doc="absent: KEDA's measure, chosen by the keys above; `OldestUndeliveredAge`: seconds "
        "the first entry the group has not delivered has waited; `OldestPendingAge`: seconds "
        "the oldest entry delivered but not acknowledged has waited; ages need `consumerGroup` "
        "and are measured on Redis's clock",
    )
    value: float | None = param(
        "value",
        number,
        default=None,
        check=positive,
        shown_default="required with an age `mode`",
        doc="the ages: the target age in seconds (a number > 0); use `metricType: Value`",
    )
    activation_value: float = param(
        "activationValue",
        number,
        default=0.0,
        check=non_negative,
        doc="the ages: active iff the age in seconds > this (a number ≥ 0)",
    )
    active_while_in_flight: bool = param(
        "activeWhileInFlight",
        boolean,
        default=False,
        doc="active also while the group has pending entries (delivered, not acknowledged), so "
        "KEDA does not scale to zero under a running job; needs `consumerGroup`",
    )


@dataclass(frozen=True, kw_only=True)
class RedisStreamsParams(ManyParams, StreamParams, DatabaseParams, EndpointParams):
    """``backend: redis-streams``: KEDA's ``redis-streams`` trigger (a standalone Redis)."""


@dataclass(frozen=True, kw_only=True)
class RedisClusterStreamsParams(ManyParams, StreamParams, DatabaseParams, EndpointParams):
    """``backend: redis-cluster-streams``: KEDA's ``redis-cluster-streams`` trigger."""


@dataclass(frozen=True, kw_only=True)
class RedisSentinelStreamsParams(
    ManyParams, StreamParams, SentinelParams, DatabaseParams, EndpointParams
):
    """``backend: redis-sentinel-streams``: KEDA's ``redis-sentinel-streams`` trigger."""
