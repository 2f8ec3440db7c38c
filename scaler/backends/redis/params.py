"""The declared parameters of the Redis list backends (``redis``, ``redis-cluster``,
``redis-sentinel``): KEDA's keys with KEDA's names, defaults and meanings, then this scaler's own
(the ``OldestAge`` mode, work in flight, and many keys per trigger).

Each backend's parameters are its connection keys (``connection``) plus :class:`ListParams` and
the keys of several keys per trigger (``keyset.ManyParams``). The
parser, the connection keys a profile supplies, the fuzz test and the docs tables derive from
these classes; the cross-field rules are ``trigger.build``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from scaler.backends.redis.connection import DatabaseParams, EndpointParams, SentinelParams
from scaler.backends.redis.keyset import ManyParams
from scaler.metadata import param
from scaler.values import boolean, integer, non_negative, number, positive, resource_name

NAME: Final = "redis"
CLUSTER_NAME: Final = "redis-cluster"
SENTINEL_NAME: Final = "redis-sentinel"

#: the length of the key, KEDA's only mode
LIST_LENGTH_MODE: Final = "ListLength"
#: seconds the oldest element of a list has waited
OLDEST_AGE_MODE: Final = "OldestAge"
MODES: Final = (LIST_LENGTH_MODE, OLDEST_AGE_MODE)
#: where ``timestampHashKey`` puts the element
PLACEHOLDER: Final = "{}"


def _one_placeholder(pattern: str) -> str | None:
    if pattern.count(PLACEHOLDER) == 1:
        return None
    return f"must contain {PLACEHOLDER} exactly once (where the element goes)"


@dataclass(frozen=True, kw_only=True)
class ListParams:
    """KEDA's list keys (``redis``, ``redis-cluster``, ``redis-sentinel``), and the age and
    in-flight keys of this scaler."""

    list_name: str = param(
        "listName",
        resource_name,
        doc="the key to measure; a comma list of keys (`a,b,c`), or with `useGlob` a pattern "
        "(`bull:*:wait`), whose values combine by `operation`",
    )
    list_length: int = param(
        "listLength",
        integer,
        default=5,
        check=positive,
        doc="target length per replica (integer > 0)",
    )
    activation_list_length: int = param(
        "activationListLength",
        integer,
        default=0,
        check=non_negative,
        doc="active iff length > this (integer ≥ 0)",
    )
    mode: str = param(
        "mode",
        default=LIST_LENGTH_MODE,
        choices=MODES,
        doc="`ListLength`: the key's length, as KEDA; `OldestAge`: seconds the oldest element "
        "of a list has waited, on Redis's clock",
    )
    value: float | None = param(
        "value",
        number,
        default=None,
        check=positive,
        shown_default="required with `OldestAge`",
        doc="`OldestAge`: the target age in seconds (a number > 0); use `metricType: Value`",
    )
    activation_value: float = param(
        "activationValue",
        number,
        default=0.0,
        check=non_negative,
        doc="`OldestAge`: active iff the age in seconds > this (a number ≥ 0)",
    )
    oldest_end: str = param(
        "oldestEnd",
        default="right",
        choices=("right", "left"),
        doc="`OldestAge`: the end of the list that holds the oldest element: `right` for "
        "LPUSH producers (Sidekiq, Celery, BullMQ), `left` for RPUSH producers (RQ)",
    )
    timestamp_field: str | None = param(
        "timestampField",
        default=None,
        shown_default="required with `OldestAge`",
        doc="`OldestAge`: where the enqueue time is: a field of the JSON element (a dot goes "
        "into a nested object: `headers.enqueued_at`), or with `timestampHashKey` a field of "
        "the hash; epoch seconds, epoch milliseconds or an RFC 3339 string",
    )
    timestamp_hash_key: str | None = param(
        "timestampHashKey",
        default=None,
        check=_one_placeholder,
        doc="`OldestAge`: the elements are ids, and the enqueue time is in the hash named by "
        "putting the id in place of `{}` (`bull:emails:{}`, `rq:job:{}`)",
    )
    processing_list_name: str | None = param(
        "processingListName",
        resource_name,
        default=None,
        doc="the list of elements being processed (the reliable-queue pattern: "
        "`bull:<queue>:active`); its length is the work in flight",
    )
    include_processing: bool = param(
        "includeProcessing",
        boolean,
        default=False,
        doc="`ListLength`: the length counts the processing list too",
    )
    active_while_in_flight: bool = param(
        "activeWhileInFlight",
        boolean,
        default=False,
        doc="active also while the processing list is not empty, so KEDA does not scale to "
        "zero under a running job",
    )


@dataclass(frozen=True, kw_only=True)
class RedisParams(ManyParams, ListParams, DatabaseParams, EndpointParams):
    """``backend: redis``: KEDA's ``redis`` trigger (a standalone Redis)."""


@dataclass(frozen=True, kw_only=True)
class RedisClusterParams(ManyParams, ListParams, DatabaseParams, EndpointParams):
    """``backend: redis-cluster``: KEDA's ``redis-cluster`` trigger."""


@dataclass(frozen=True, kw_only=True)
class RedisSentinelParams(ManyParams, ListParams, SentinelParams, DatabaseParams, EndpointParams):
    """``backend: redis-sentinel``: KEDA's ``redis-sentinel`` trigger."""
