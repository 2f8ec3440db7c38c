"""What ``bench.redis_cluster_streams`` does to the Cluster and over gRPC: the streams and their
group created, placed and deleted, each master's command statistics and the scaler's connections
to it, a worker's read and acknowledgement, and the StreamIsActive calls held open.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from redis.asyncio.cluster import ClusterNode, RedisCluster

from bench.harness.scaler_facts import REDIS_CLIENT_NAME
from bench.redis_cluster_figures import Stat, command_stats, spread
from scaler.proto import externalscaler_pb2 as pb

#: commands in flight at once while creating or deleting the streams
AT_ONCE = 50


async def connect(seeds: str) -> RedisCluster:
    """A client of the Cluster from ``host:port,...`` seeds, its slot map loaded."""
    nodes = [s.strip().rpartition(":") for s in seeds.split(",") if s.strip()]
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, int(port)) for host, _, port in nodes],
        decode_responses=True,
    )
    await cluster.initialize()
    return cluster


async def _each(keys: Sequence[str], call: Callable[[str], Awaitable[Any]]) -> None:
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(key: str) -> None:
        async with gate:
            await call(key)

    await asyncio.gather(*(one(key) for key in keys))


async def create_streams(cluster: RedisCluster, keys: Sequence[str], group: str) -> None:
    """Each stream, empty, with ``group`` at its end (no lag)."""

    async def create(key: str) -> None:
        await cluster.xgroup_create(key, group, id="$", mkstream=True)

    await _each(keys, create)


async def delete_streams(cluster: RedisCluster, keys: Sequence[str]) -> None:
    async def delete(key: str) -> None:
        await cluster.delete(key)

    await _each(keys, delete)


async def verify_spread(cluster: RedisCluster, keys: Sequence[str], tag: str) -> dict[str, Any]:
    """Where the streams live: the slot map's owner of each, checked by SCAN on each master.

    :param tag: the prefix of every key (``tag-*`` is scanned)
    :raises RuntimeError: a master holds other streams than its slots say, or too few
    """
    masters = cluster.get_primaries()
    owners = [str(getattr(cluster.get_node_from_key(key), "name", "?")) for key in keys]
    figures = spread(owners, [str(m.name) for m in masters])
    for node in masters:
        found, cursor = 0, 0
        while True:
            reply: Any = await cluster.scan(cursor, match=f"{tag}-*", count=1000, target_nodes=node)
            cursors, batch = reply  # ({node name: cursor}, keys) for one node
            found += len(batch)
            cursor = int(next(iter(cursors.values())))
            if cursor == 0:
                break
        if found != figures["per_master"][node.name]:
            raise RuntimeError(f"{node.name} holds {found} of the streams, its slots say otherwise")
    if not figures["even"]:
        raise RuntimeError(f"the streams are not spread over the masters: {figures}")
    return figures


async def master_stats(cluster: RedisCluster) -> dict[str, dict[str, Stat]]:
    """Every master's ``INFO commandstats``, asked of all at once."""
    nodes = cluster.get_primaries()
    infos = await asyncio.gather(
        *(cluster.info("commandstats", target_nodes=node) for node in nodes)
    )
    return {str(node.name): command_stats(info) for node, info in zip(nodes, infos, strict=True)}


async def scaler_connections(cluster: RedisCluster) -> dict[str, int]:
    """TCP connections the scaler holds to each master (its connections carry its name)."""
    out = {}
    for node in cluster.get_primaries():
        clients = await cluster.client_list(target_nodes=node)
        out[str(node.name)] = sum(1 for c in clients if c.get("name") == REDIS_CLIENT_NAME)
    return out


async def consume(cluster: RedisCluster, key: str, group: str, consumer: str) -> int:
    """What a worker does: read the group's new entries and acknowledge them; how many."""
    reply: Any = await cluster.xreadgroup(group, consumer, {key: ">"}, count=100)
    done = 0
    for _, entries in reply or []:
        ids = [entry_id for entry_id, _ in entries]
        if ids:
            done += await cluster.xack(key, group, *ids)
    return done


class OpenStreams:
    """One StreamIsActive call per stream, all on the stub's channel (KEDA holds one connection
    per scaler address); every message after the initial state is stamped on arrival."""

    def __init__(self, stub: Any, refs: Mapping[str, pb.ScaledObjectRef]) -> None:
        self.initial: dict[str, bool] = {}
        self.unexpected = 0
        self.ended: Counter[str] = Counter()
        self._count = len(refs)
        self._all = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[tuple[float, bool]]] = {}
        self._closing = False
        self._started = time.perf_counter()
        loop = asyncio.get_running_loop()
        self._calls = {key: stub.StreamIsActive(ref) for key, ref in refs.items()}
        self._tasks = [loop.create_task(self._read(k, c)) for k, c in self._calls.items()]

    async def _read(self, key: str, call: Any) -> None:
        try:
            async for message in call:
                now = time.perf_counter()
                if key not in self.initial:
                    self.initial[key] = bool(message.result)
                    if len(self.initial) == self._count:
                        self._all.set()
                    continue
                waiter = self._waiting.pop(key, None)
                if waiter is None or waiter.done():
                    self.unexpected += 1
                else:
                    waiter.set_result((now, bool(message.result)))
            self.ended["OK"] += 1
        except grpc.aio.AioRpcError as err:
            if not self._closing:
                self.ended[err.code().name] += 1

    async def ready(self, within: float) -> float:
        """Seconds from opening until every stream had its initial state, which must be false.

        :raises RuntimeError: not within ``within`` seconds, or a stream said true first
        """
        try:
            await asyncio.wait_for(self._all.wait(), within)
        except TimeoutError:
            raise RuntimeError(
                f"{len(self.initial)} of {self._count} streams had their initial state within "
                f"{within:g} s; ended early: {dict(self.ended)}"
            ) from None
        seconds = time.perf_counter() - self._started
        active = [key for key, value in self.initial.items() if value]
        if active:
            raise RuntimeError(f"{len(active)} idle streams said true first, e.g. {active[0]}")
        return round(seconds, 3)

    def expect(self, key: str) -> asyncio.Future[tuple[float, bool]]:
        """The next message of ``key``'s stream: (arrival time, value). Ask before causing it."""
        future: asyncio.Future[tuple[float, bool]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def forget(self, key: str) -> None:
        self._waiting.pop(key, None)

    async def close(self) -> None:
        """Cancel every call (as KEDA does when a ScaledObject goes away)."""
        self._closing = True
        for call in self._calls.values():
            call.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
