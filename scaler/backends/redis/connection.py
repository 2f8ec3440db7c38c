"""Where a Redis trigger connects: the connection keys of KEDA's six Redis triggers, declared once,
and the three connection identities they make (standalone, Cluster, Sentinel).

KEDA's ``redisConnectionInfo`` is shared by all six triggers: ``address``/``addresses`` (a comma
list), or ``host``/``hosts`` with ``port``/``ports`` (comma lists of equal length, joined pairwise
and appended to the addresses); ``username``, ``password``; ``enableTLS`` or ``tls``;
``unsafeSsl``; for Sentinel ``sentinelMaster``, ``sentinelUsername``, ``sentinelPassword``. What
KEDA does with them differs by topology, and so do the identities here:

* standalone (``redis``, ``redis-streams``): the first address, with ``databaseIndex``;
* Cluster (``redis-cluster``, ``redis-cluster-streams``): every address is a seed node; Cluster
  has database 0 only, so a ``databaseIndex`` other than 0 is refused (KEDA ignores it);
* Sentinel (``redis-sentinel``, ``redis-sentinel-streams``): every address is a sentinel; the
  master is found by ``sentinelMaster`` (required here; KEDA would fail at connect time), the
  sentinels' credentials are kept apart from the data node's.

The parameter groups below are mixed into each trigger's parameters (``params``); the pool keeps
one client per distinct identity value, so triggers naming the same cluster share its client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from scaler.metadata import Reading, param
from scaler.values import boolean, host_port, integer, non_negative, quote

STANDALONE: Final = "standalone"
CLUSTER: Final = "cluster"
SENTINEL: Final = "sentinel"
TOPOLOGIES: Final = (STANDALONE, CLUSTER, SENTINEL)

#: a ``host:port`` pair, as connected to
Address = tuple[str, int]


def _ports(value: str) -> str | None:
    """A check: a comma list of TCP ports."""
    for item in (part.strip() for part in value.split(",")):
        if not (item.isascii() and item.isdigit()) or len(item) > 5:
            return "is not a valid integer" if "," not in value else f"has {quote(item)}, no port"
        if not 0 < int(item) < 65536:
            return (
                "is not a TCP port (1-65535)"
                if "," not in value
                else f"has {quote(item)}, no TCP port"
            )
    return None


@dataclass(frozen=True, kw_only=True)
class EndpointParams:
    """The connection keys every Redis trigger has (KEDA's ``redisConnectionInfo``)."""

    address: str | None = param(
        "address",
        aliases=("addresses",),
        default=None,
        connection=True,
        endpoint="host:port",
        shown_default="required unless `host`+`port`",
        doc="`host:port` (`[::1]:6379` for IPv6), or a comma list: standalone Redis uses the "
        "first, Cluster takes each as a seed node, Sentinel each as a sentinel",
    )
    host: str | None = param(
        "host",
        aliases=("hosts",),
        default=None,
        connection=True,
        endpoint="host",
        doc="alternative to `address`, with `port`: a host or a comma list of hosts, joined "
        "pairwise with the ports",
    )
    port: str | None = param(
        "port",
        aliases=("ports",),
        default=None,
        check=_ports,
        connection=True,
        endpoint="port",
        doc="alternative to `address`, with `host`: a port or a comma list, as many as hosts",
    )
    username: str | None = param("username", default=None, connection=True, doc="ACL user")
    password: str | None = param(
        "password",
        default=None,
        secret=True,
        connection=True,
        doc="password",
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


@dataclass(frozen=True, kw_only=True)
class DatabaseParams:
    """The database number (standalone and Sentinel; Cluster accepts 0 only)."""

    database_index: int = param(
        "databaseIndex",
        integer,
        default=0,
        check=non_negative,
        doc="database number, ≥ 0 (Redis Cluster has database 0 only)",
    )


@dataclass(frozen=True, kw_only=True)
class SentinelParams:
    """The Sentinel keys: which master, and the sentinels' own credentials."""

    sentinel_master: str | None = param(
        "sentinelMaster",
        default=None,
        connection=True,
        shown_default="required",
        doc="the master name the sentinels monitor",
    )
    sentinel_username: str | None = param(
        "sentinelUsername",
        default=None,
        connection=True,
        doc="ACL user for the sentinels (`username` is the data node's)",
    )
    sentinel_password: str | None = param(
        "sentinelPassword",
        default=None,
        secret=True,
        connection=True,
        doc="password for the sentinels (`password` is the data node's)",
    )


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class RedisConnection:
    """A standalone Redis: the pool keeps one client per distinct value."""

    host: str
    port: int
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    unsafe_ssl: bool = False

    @property
    def address(self) -> str:
        return _shown(self.host, self.port)

    @property
    def label(self) -> str:
        """Where, for resource labels and messages: address and database."""
        return f"{self.address}/{self.database}"


@dataclass(frozen=True, slots=True)
class RedisClusterConnection:
    """A Redis Cluster, known by its seed nodes (any order names the same cluster)."""

    nodes: tuple[Address, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    unsafe_ssl: bool = False

    @property
    def address(self) -> str:
        return ",".join(_shown(*node) for node in self.nodes)

    @property
    def label(self) -> str:
        return f"cluster {_shown(*self.nodes[0])}"


@dataclass(frozen=True, slots=True)
class RedisSentinelConnection:
    """A master found through sentinels; the data node's and the sentinels' credentials apart."""

    sentinels: tuple[Address, ...]
    master: str
    database: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    unsafe_ssl: bool = False

    @property
    def address(self) -> str:
        return ",".join(_shown(*node) for node in self.sentinels)

    @property
    def label(self) -> str:
        return f"sentinel {self.master}/{self.database}"


#: a connection identity of any topology
AnyConnection = RedisConnection | RedisClusterConnection | RedisSentinelConnection


def secrets_of(connection: AnyConnection) -> tuple[str, ...]:
    """The secret values of an identity, to mask in messages."""
    found = [connection.password]
    if isinstance(connection, RedisSentinelConnection):
        found.append(connection.sentinel_password)
    return tuple(secret for secret in found if secret)


def _addresses(params: EndpointParams, reading: Reading) -> list[Address] | None:
    """KEDA's ``validateRedisAddress``: the address list, then hosts and ports joined pairwise;
    None after a problem (each recorded)."""
    addresses: list[Address] = []
    failed = False
    found = reading.lookup("address", ("addresses",))
    if found is not None:
        for item in (part.strip() for part in found[1].split(",")):
            address = host_port(item)
            if address is None:
                reading.problem(f"{found[0]}: {quote(item)} is not host:port")
                failed = True
            else:
                addresses.append(address)
    hosts_given = reading.given("host", ("hosts",))
    ports_given = reading.given("port", ("ports",))
    if hosts_given or ports_given:
        if not hosts_given:
            reading.problem("missing required parameter host")
        if not ports_given:
            reading.problem("missing required parameter port")
        if params.host is None or params.port is None:
            return None
        hosts = [part.strip() for part in params.host.split(",")]
        ports = [int(part) for part in params.port.split(",")]
        if len(hosts) != len(ports):
            reading.problem(
                f"host has {len(hosts)} hosts and port {len(ports)} ports: give as many of each "
                "(they are joined pairwise)"
            )
            return None
        for host, port in zip(hosts, ports, strict=True):
            shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
            address = host_port(f"{shown}:{port}")
            if address is None:
                reading.problem(f"host: {quote(host)} is not a host name or address")
                failed = True
            else:
                addresses.append(address)
    elif found is None:
        reading.problem("missing required parameter address (or host and port)")
        return None
    return None if failed else addresses


def _tls(params: EndpointParams, reading: Reading) -> bool:
    if params.enable_tls is not None and params.tls is not None:
        reading.problem("enableTLS and tls cannot both be set")
    return bool(params.enable_tls) or params.tls == "enable"


def build_connection(
    topology: str, params: EndpointParams, reading: Reading
) -> AnyConnection | None:
    """The identity a trigger's connection keys name, in ``topology``; None after a problem."""
    addresses = _addresses(params, reading)
    tls = _tls(params, reading)
    database = params.database_index if isinstance(params, DatabaseParams) else 0
    if topology == CLUSTER and database != 0:
        reading.problem(
            f"databaseIndex: {database}: Redis Cluster has database 0 only (KEDA ignores the key)"
        )
    master = None
    if isinstance(params, SentinelParams):
        master = params.sentinel_master
        if not reading.given("sentinelMaster"):
            reading.problem(
                "missing required parameter sentinelMaster (the master name the sentinels monitor)"
            )
    if addresses is None or reading.failed:
        return None
    user, password, unsafe = params.username, params.password, params.unsafe_ssl
    # the same seeds in another order name the same cluster: one client, one identity
    seeds = tuple(sorted(dict.fromkeys(addresses)))
    if topology == CLUSTER:
        return RedisClusterConnection(seeds, user, password, tls, unsafe)
    if topology == SENTINEL:
        assert isinstance(params, SentinelParams)
        assert master is not None
        return RedisSentinelConnection(
            seeds,
            master,
            database,
            user,
            password,
            params.sentinel_username,
            params.sentinel_password,
            tls,
            unsafe,
        )
    host, port = addresses[0]  # standalone Redis uses the first, as KEDA
    return RedisConnection(host, port, database, user, password, tls, unsafe)
