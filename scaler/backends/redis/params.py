"""The declared parameters of ``backend: redis``: KEDA's ``redis`` trigger keys with KEDA's name,
default and meaning, then this scaler's own (the ``OldestAge`` mode and work in flight).

The parser, the connection keys a profile supplies, the fuzz test and the docs table derive from
:class:`RedisParams`; the cross-field rules are ``trigger.build``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from scaler.metadata import param
from scaler.values import (
    boolean,
    integer,
    non_negative,
    number,
    positive,
    resource_name,
    tcp_port,
)

NAME: Final = "redis"

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisParams:
    """KEDA's ``redis`` trigger parameters, and the age and in-flight keys of this scaler."""

    address: str | None = param(
        "address",
        aliases=("addresses",),
        default=None,
        connection=True,
        endpoint="host:port",
        shown_default="required unless `host`+`port`",
        doc="`host:port` (`[::1]:6379` for IPv6); of a comma list, the first is used "
        "(standalone Redis, as KEDA)",
    )
    host: str | None = param(
        "host",
        aliases=("hosts",),
        default=None,
        connection=True,
        endpoint="host",
        doc="alternative to `address`, with `port`",
    )
    port: int | None = param(
        "port",
        integer,
        aliases=("ports",),
        default=None,
        check=tcp_port,
        connection=True,
        endpoint="port",
        doc="alternative to `address`, with `host`",
    )
    username: str | None = param("username", default=None, connection=True, doc="ACL user")
    password: str | None = param(
        "password",
        default=None,
        secret=True,
        connection=True,
        doc="password",
    )
    database_index: int = param(
        "databaseIndex", integer, default=0, check=non_negative, doc="database number, ≥ 0"
    )
    enable_tls: bool | None = param(
        "enableTLS",
        boolean,
        default=None,
        connection=True,
        shown_default="`false`",
        doc="TLS to Redis. **Caution**: KEDA reads this key too and then also uses TLS to reach "
        "the scaler; use `tls` instead unless the scaler serves TLS",
    )
    tls: str | None = param(
        "tls",
        default=None,
        choices=("enable", "disable"),
        connection=True,
        shown_default="`disable`",
        doc="TLS to Redis only (KEDA's authParams name); cannot be combined with `enableTLS`",
    )
    unsafe_ssl: bool = param(
        "unsafeSsl", boolean, default=False, connection=True, doc="skip certificate verification"
    )
    list_name: str = param("listName", resource_name, doc="the key to measure")
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
