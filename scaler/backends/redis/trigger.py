"""``backend: redis`` parameters and arithmetic: KEDA's ``redis`` (redis-lists) trigger.

Every key is declared once in :class:`RedisParams` with KEDA's name, default and meaning; the
cross-field rules (``address`` or ``host`` + ``port``, ``enableTLS`` versus ``tls``) are
:func:`build`'s. A trigger is active iff the length is greater than ``activationListLength``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from scaler.backends.base import Evaluation, Measurement, Trigger, metric_name
from scaler.metadata import Reading, param
from scaler.values import (
    boolean,
    host_port,
    integer,
    non_negative,
    positive,
    quote,
    resource_name,
    tcp_port,
)

NAME: Final = "redis"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisParams:
    """KEDA's ``redis`` trigger parameters."""

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


@dataclass(frozen=True, slots=True)
class RedisConnection:
    """Identity of one Redis connection; the pool keeps one client per distinct value."""

    host: str
    port: int
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    unsafe_ssl: bool = False

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RedisList:
    """The resource read from Redis: one key in one database (the database is in the connection)."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisTrigger(Trigger[RedisConnection, RedisList]):
    """A parsed ``backend: redis`` trigger."""

    params: RedisParams

    @property
    def target(self) -> float:
        return float(self.params.list_length)

    def metric_name(self) -> str:
        return metric_name("redis", self.resource.key)

    def resource_label(self) -> str:
        return f"{self.connection.address}/{self.connection.database}/{self.resource.key}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        # KEDA: active iff length > activationListLength (strict)
        active = measurement.value > self.params.activation_list_length
        return Evaluation(measurement.value, active)


def _endpoint(params: RedisParams, reading: Reading) -> tuple[str, int] | None:
    """(host, port) from ``address``, else from ``host`` + ``port``; None after a problem."""
    found = reading.lookup("address", ("addresses",))
    if found is not None:
        return _first_address(reading, found[0], found[1])
    if not reading.given("host", ("hosts",)) and not reading.given("port", ("ports",)):
        reading.problem("missing required parameter address (or host and port)")
        return None
    if not reading.given("host", ("hosts",)):
        reading.problem("missing required parameter host")
    if not reading.given("port", ("ports",)):
        reading.problem("missing required parameter port")
    if params.host is None or params.port is None:
        return None
    first = params.host.split(",")[0].strip()
    shown = f"[{first}]" if ":" in first and not first.startswith("[") else first
    return _first_address(reading, "host", f"{shown}:{params.port}")


def _first_address(reading: Reading, key: str, value: str) -> tuple[str, int] | None:
    # a comma list is KEDA's `addresses` form; standalone Redis uses the first
    first = value.split(",")[0].strip()
    address = host_port(first)
    if address is None:
        reading.problem(f"{key}: {quote(first)} is not host:port")
    return address


def build(params: RedisParams, reading: Reading) -> RedisTrigger | None:
    """The trigger, after KEDA's cross-field rules; None when a problem prevents it."""
    address = _endpoint(params, reading)
    if params.enable_tls is not None and params.tls is not None:
        reading.problem("enableTLS and tls cannot both be set")
    if address is None or reading.failed:
        return None
    return RedisTrigger(
        connection=RedisConnection(
            host=address[0],
            port=address[1],
            database=params.database_index,
            username=params.username,
            password=params.password,
            tls=bool(params.enable_tls) or params.tls == "enable",
            unsafe_ssl=params.unsafe_ssl,
        ),
        resource=RedisList(params.list_name),
        params=params,
    )
