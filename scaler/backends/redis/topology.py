"""How a script reaches Redis in each topology: one standalone server, a master found through
sentinels, or the nodes of a Cluster that own the keys.

A :class:`Runner` runs one script call with its KEYS and ARGV and says which calls a batch of
reads needs (:meth:`Runner.plan`): one on a standalone server or a Sentinel master; one per node
on a Cluster, where each call carries the keys that node owns. It also lists the keys a glob
matches (:meth:`Runner.scan`: SCAN on the server, the master, or every master of a Cluster).
Errors become the scaler's (``BackendUnavailable`` for a node or master that cannot be reached),
secrets masked. Keys are text; one that is no UTF-8 travels as its bytes (``surrogateescape``).

The script text differs by topology (:func:`variant`): a Sentinel master's scripts start with a
bare ``#!lua`` line, which makes Redis 7 refuse them on a replica (``READONLY``): after a
failover the old master answers no read, redis-py asks the sentinels again, and the next read
reaches the new master. A Cluster node's scripts declare ``allow-cross-slot-keys``, so one call
reads every key a node owns whatever their slots.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    Connection,
    SSLConnection,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from scaler.backends.redis.connection import (
    AnyConnection,
    RedisClusterConnection,
    RedisConnection,
    RedisSentinelConnection,
    secrets_of,
)
from scaler.backends.redis.idle_pool import IdleClosingPool
from scaler.backends.redis.scripts import Script
from scaler.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    UnsupportedResource,
)

#: connections one client opens to one Redis server at most; reads beyond wait for a free one
_MAX_CONNECTIONS: Final = 64
#: keys one SCAN call examines (its COUNT): a pass over a million keys is a thousand calls
SCAN_COUNT: Final = 1000
#: a key SCAN returns that is no UTF-8 stays the same bytes on its way back to Redis
_KEY_ERRORS: Final = "surrogateescape"
_SENTINEL_SHEBANG: Final = "#!lua\n"
# Redis refuses a call whose declared KEYS span slots (CROSSSLOT) before the script runs, even
# with allow-cross-slot-keys: so a Cluster call declares one key, which routes it, and passes
# every key in ARGV (a count, the keys, then the script's own ARGV); these locals shadow the
# globals, so the script's body is the same in every topology.
_CLUSTER_SHEBANG: Final = (
    "#!lua flags=allow-cross-slot-keys\n"
    "local KEYS, ARGV = (function(argv)\n"
    "  local n, keys, rest = tonumber(argv[1]), {}, {}\n"
    "  for i = 1, n do keys[i] = argv[1 + i] end\n"
    "  for i = n + 2, #argv do rest[#rest + 1] = argv[i] end\n"
    "  return keys, rest\n"
    "end)(ARGV)\n"
)

#: one value of a script's reply
Reply = list[bytes | int | None]


def variant(script: Script, shebang: str) -> Script:
    """The script with a shebang line (Redis 7 script flags), cached by text."""
    return _VARIANTS.setdefault((script.text, shebang), Script(shebang + script.text.lstrip("\n")))


_VARIANTS: dict[tuple[str, str], Script] = {}


def _tls_options(tls: bool, unsafe: bool) -> dict[str, Any]:
    if not tls:
        return {}
    return {"ssl_cert_reqs": "none" if unsafe else "required", "ssl_check_hostname": not unsafe}


class Runner(ABC):
    """Runs scripts on one connection identity; one per :class:`~.client.RedisClient`."""

    #: the redis-py client of a topology with one master
    _redis: Any

    def __init__(self, connection: AnyConnection, timeout: float) -> None:
        self.where = f"redis {connection.label}"
        self._secrets = secrets_of(connection)
        self._timeout = timeout

    async def plan(self, keys: Sequence[Sequence[str]], alone: Sequence[bool]) -> list[list[int]]:
        """Which reads go together in one script call: indexes into ``keys`` (each read's keys),
        grouped. ``alone`` marks reads that touch keys they cannot declare (a hash named by a
        list element), which only a Cluster must keep apart. One server: one call for all."""
        return [list(range(len(keys)))]

    @abstractmethod
    async def run(self, script: Script, keys: Sequence[str], argv: Sequence[str]) -> Reply:
        """One script call (EVALSHA, EVAL when the server does not know it yet)."""

    async def scan(self, pattern: str, limit: int) -> tuple[list[str], int]:
        """The keys matching ``pattern`` (``SCAN MATCH``, :data:`SCAN_COUNT` a call) on every
        master at once, each key once, and the SCAN calls it cost; a master stops once it has
        found more than ``limit``. A master that cannot be reached fails it: the keys it holds
        are unknown."""
        passes = await asyncio.gather(
            *(self._scan(client, route, pattern, limit) for client, route in await self._masters())
        )
        found: dict[str, None] = {}
        for keys, _ in passes:
            found.update(dict.fromkeys(keys))
        return list(found), sum(calls for _, calls in passes)

    async def _masters(self) -> list[tuple[Any, dict[str, Any]]]:
        """Each master as (redis-py client, routing arguments of ``execute_command``): the one
        server or master a client reaches, unless a topology has several."""
        return [(self._redis, {})]

    async def _scan(
        self, client: Any, route: dict[str, Any], pattern: str, limit: int
    ) -> tuple[set[str], int]:
        found: set[str] = set()
        cursor: Any = 0
        calls = 0
        while True:
            try:
                cursor, keys = await client.execute_command(
                    "SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT, **route
                )
            except rexc.RedisError as err:
                raise self.translate(err) from None
            calls += 1
            if isinstance(cursor, dict):  # a Cluster node's cursor, by node name
                cursor = next(iter(cursor.values()))
            found.update(key.decode(errors=_KEY_ERRORS) for key in keys)
            if int(cursor) == 0 or len(found) > limit:
                return found, calls

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection; idempotent."""

    async def _evalsha(
        self, client: Any, script: Script, keys: Sequence[str], argv: Sequence[str], **route: Any
    ) -> Reply:
        try:
            try:
                reply = await client.execute_command(
                    "EVALSHA", script.sha, len(keys), *keys, *argv, **route
                )
            except rexc.NoScriptError:
                # first use on this server (or after a restart): EVAL also caches the script
                reply = await client.execute_command(
                    "EVAL", script.text, len(keys), *keys, *argv, **route
                )
        except rexc.RedisError as err:
            raise self.translate(err) from None
        return list(reply)

    def translate(self, err: rexc.RedisError) -> BackendError:
        """The scaler's error for a redis-py error, secrets masked."""
        detail = str(err)
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        message = f"{self.where}: {detail}"
        if isinstance(err, rexc.AuthenticationError | rexc.AuthenticationWrongNumberOfArgsError):
            return BackendAuthError(message)
        if isinstance(err, rexc.NoPermissionError | rexc.AuthorizationError):
            return BackendPermissionDenied(message)
        if isinstance(err, rexc.TimeoutError):
            return BackendTimeout(message)
        if isinstance(err, rexc.ConnectionError | rexc.BusyLoadingError | rexc.ReadOnlyError):
            return BackendUnavailable(message)
        if isinstance(
            err,
            rexc.ClusterDownError
            | rexc.TryAgainError
            | rexc.MasterDownError
            | rexc.SlotNotCoveredError,
        ):
            return BackendUnavailable(message)
        if isinstance(err, rexc.ResponseError) and detail.startswith(("NOAUTH", "WRONGPASS")):
            return BackendAuthError(message)
        return BackendError(message)


class StandaloneRunner(Runner):
    """One Redis server, through a small blocking pool."""

    def __init__(self, connection: RedisConnection, timeout: float) -> None:
        super().__init__(connection, timeout)
        # A blocking pool makes a burst of distinct reads wait for a connection (bounded by the
        # timeout) instead of failing with "Too many connections".
        self._pool = IdleClosingPool(
            max_connections=_MAX_CONNECTIONS,
            timeout=timeout,
            connection_class=SSLConnection if connection.tls else Connection,
            host=connection.host,
            port=connection.port,
            db=connection.database,
            username=connection.username,
            password=connection.password,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            # No hidden retries: the engine retries once on a fresh client, within the deadline.
            retry=Retry(NoBackoff(), 0),
            client_name="keda-queue-scaler",
            encoding_errors=_KEY_ERRORS,
            **_tls_options(connection.tls, connection.unsafe_ssl),
        )
        self.where = f"redis {connection.address} db {connection.database}"
        self._redis = aioredis.Redis(connection_pool=self._pool)

    async def run(self, script: Script, keys: Sequence[str], argv: Sequence[str]) -> Reply:
        return await self._evalsha(self._redis, script, keys, argv)

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()


class SentinelRunner(Runner):
    """The master the sentinels name, found again after a failover."""

    def __init__(self, connection: RedisSentinelConnection, timeout: float) -> None:
        super().__init__(connection, timeout)
        tls = _tls_options(connection.tls, connection.unsafe_ssl)
        timeouts = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        sentinel_kwargs: dict[str, Any] = {
            **timeouts,
            "username": connection.sentinel_username,
            "password": connection.sentinel_password,
            "retry": Retry(NoBackoff(), 0),
        }
        if connection.tls:
            sentinel_kwargs.update(ssl=True, **tls)
        self._sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(connection.sentinels), sentinel_kwargs=sentinel_kwargs, **timeouts
        )
        self._redis = self._sentinel.master_for(
            connection.master,
            db=connection.database,
            username=connection.username,
            password=connection.password,
            ssl=connection.tls,
            max_connections=_MAX_CONNECTIONS,
            retry=Retry(NoBackoff(), 0),
            client_name="keda-queue-scaler",
            encoding_errors=_KEY_ERRORS,
            **tls,
        )

    async def run(self, script: Script, keys: Sequence[str], argv: Sequence[str]) -> Reply:
        return await self._evalsha(self._redis, variant(script, _SENTINEL_SHEBANG), keys, argv)

    async def aclose(self) -> None:
        await self._redis.aclose()
        for sentinel in self._sentinel.sentinels:
            await sentinel.aclose()


class ClusterRunner(Runner):
    """The nodes of a Cluster: each read on the master that owns its keys' slots."""

    def __init__(self, connection: RedisClusterConnection, timeout: float) -> None:
        super().__init__(connection, timeout)
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in connection.nodes],
            username=connection.username,
            password=connection.password,
            ssl=connection.tls,
            # a node that is down fails the reads of its own keys only
            require_full_coverage=False,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=_MAX_CONNECTIONS,
            retry=Retry(NoBackoff(), 1),
            client_name="keda-queue-scaler",
            encoding_errors=_KEY_ERRORS,
            **_tls_options(connection.tls, connection.unsafe_ssl),
        )

    async def plan(self, keys: Sequence[Sequence[str]], alone: Sequence[bool]) -> list[list[int]]:
        """One call per master, with the reads whose keys it owns. A read whose keys live on
        several masters, or that touches undeclared keys, goes alone to its first key's master:
        if Redis refuses it (give its keys one hash tag), no other read fails with it."""
        await self._slot_map()
        groups: dict[str, list[int]] = {}
        apart: list[list[int]] = []
        for index, read in enumerate(keys):
            nodes = {self._node_name(key) for key in read}
            if len(nodes) > 1 or alone[index]:
                apart.append([index])
            else:
                groups.setdefault(nodes.pop(), []).append(index)
        return [*groups.values(), *apart]

    def _owner(self, key: str) -> ClusterNode:
        """The master that owns the key's slot; UNAVAILABLE when none serves it now."""
        try:
            node = self._cluster.get_node_from_key(key)
        except rexc.RedisError as err:
            raise self.translate(err) from None
        if node is None:
            raise BackendUnavailable(f"{self.where}: no master serves the slot of {key!r}")
        return node

    async def _slot_map(self) -> None:
        try:
            await self._cluster.initialize()  # the slot map, once (and again after a MOVED)
        except rexc.RedisError as err:
            raise self.translate(err) from None

    async def _masters(self) -> list[tuple[Any, dict[str, Any]]]:
        await self._slot_map()
        return [(self._cluster, {"target_nodes": node}) for node in self._cluster.get_primaries()]

    def _node_name(self, key: str) -> str:
        try:
            node = self._cluster.get_node_from_key(key)
        except rexc.RedisError:
            node = None  # a slot no master serves: run() says so for the reads on it
        return "" if node is None else str(node.name)

    async def run(self, script: Script, keys: Sequence[str], argv: Sequence[str]) -> Reply:
        # plan() loaded the slot map; the reads of one batch then run concurrently on it
        node = self._owner(keys[0])
        cluster_script = variant(script, _CLUSTER_SHEBANG)
        routed = [keys[0]]
        carried = [str(len(keys)), *keys, *argv]
        try:
            return await self._evalsha(
                self._cluster, cluster_script, routed, carried, target_nodes=node
            )
        except BackendError as err:
            if "non local key" in str(err):
                raise UnsupportedResource(
                    f"{self.where}: the keys {', '.join(map(repr, keys))} (or a hash an element "
                    "names) are on different masters; give them one hash tag, such as "
                    "{queue}:wait and {queue}:active"
                ) from None
            if "MOVED" not in str(err) and "ASK" not in str(err):
                raise
        # a slot moved (resharding): redis-py updated its slot map; route again, once
        node = self._owner(keys[0])
        return await self._evalsha(
            self._cluster, cluster_script, routed, carried, target_nodes=node
        )

    async def aclose(self) -> None:
        await self._cluster.aclose()


def runner(connection: AnyConnection, timeout: float) -> Runner:
    """The runner of a connection identity's topology."""
    if isinstance(connection, RedisClusterConnection):
        return ClusterRunner(connection, timeout)
    if isinstance(connection, RedisSentinelConnection):
        return SentinelRunner(connection, timeout)
    return StandaloneRunner(connection, timeout)
