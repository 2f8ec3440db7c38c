"""A batch of reads through a topology's :class:`~.topology.Runner`, shared by the list and the
stream clients (:class:`ScriptClient`).

Each resource is first spread into the keys it reads: its one key, a comma list's keys, or those
its glob matches (``globs``: SCAN, kept for ``globRefreshSeconds``), each a read of its own, and
a key that several resources read is read once. The runner then groups every key's read by
server (:meth:`~.topology.Runner.plan`: one group on a standalone server or a Sentinel master,
one per Cluster master), so a resource whose keys live on three masters costs one script call on
each, shared with every other read of the batch. Each resource gets its one key's outcome, or its
keys' gathered into one measurement (``keyset.gather``: each key an item).

A failure that concerns one read (a key of another type, a missing group) is that read's
outcome, and fails every resource that reads it; a server that cannot be reached fails the reads
it holds, and the batch itself only when no server answered.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Protocol, Self, TypeVar

from scaler.backends.base import Batch, Client, Measurement
from scaler.backends.redis.connection import AnyConnection
from scaler.backends.redis.globs import Globs
from scaler.backends.redis.keyset import KEYS, KeySet, gather
from scaler.backends.redis.topology import Runner, runner
from scaler.errors import BackendUnavailable


class Spread(Hashable, Protocol):
    """A resource that may name several keys (``RedisList``, ``RedisStream``)."""

    @property
    def many(self) -> KeySet | None: ...

    def part(self, key: str) -> Self:
        """One of its keys, read as a resource of its own."""
        ...


R = TypeVar("R", bound=Hashable)
S = TypeVar("S", bound=Spread)

#: one script call for reads that one server holds: each read's measurement or error, in order
ReadGroup = Callable[[Sequence[R]], Awaitable[Sequence[Measurement | Exception]]]
#: per resource, its keys and the resource read for each; or the error resolving them
_Parts = list[tuple[str, S]] | BaseException


async def read_batch(
    runner: Runner,
    resources: Sequence[R],
    keys: Sequence[Sequence[str]],
    alone: Sequence[bool],
    read_group: ReadGroup[R],
) -> Batch[R]:
    """Every resource's outcome, in one script call per group the runner plans.

    :param keys: each resource's keys (what routes it on a Cluster)
    :param alone: each resource's need to be read on its own on a Cluster (undeclared keys)
    :returns: per resource its measurement or error, and the script calls it cost
    """
    plan = await runner.plan(keys, alone)
    outcomes = await asyncio.gather(
        *(read_group([resources[i] for i in group]) for group in plan),
        return_exceptions=True,
    )
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    # a cancel, or no server answered (the connection itself failed): the batch's error
    for error in failed:
        if not isinstance(error, Exception):
            raise error
    if failed and len(failed) == len(plan) and isinstance(failed[0], BackendUnavailable):
        raise failed[0]
    results: dict[R, Measurement | BaseException] = {}
    for group, outcome in zip(plan, outcomes, strict=True):
        for position, index in enumerate(group):
            if isinstance(outcome, BaseException):
                results[resources[index]] = outcome
            else:
                results[resources[index]] = outcome[position]
    return results, len(plan)


class ScriptClient(Client[S], ABC):
    """A client whose reads are script calls through a topology: one redis-py client (with its
    own small connection pools) for one identity, and the resolutions of its globs."""

    def __init__(self, connection: AnyConnection, timeout: float) -> None:
        self._runner: Runner = runner(connection, timeout)
        self._globs = Globs(self._runner)

    async def measure(self, resource: S) -> Measurement:
        # through the batch, so that a Cluster routes a single read as it routes many
        results, _ = await self.measure_many([resource])
        outcome = results[resource]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[S]) -> Batch[S]:
        """Every resource of this connection in one script call per server (watchers' batches),
        each of its keys read once; a server that cannot be reached fails its own resources
        only, unless it is the only one."""
        spread, scans = await self._spread(resources)
        reads = list(
            dict.fromkeys(
                read
                for parts in spread.values()
                if not isinstance(parts, BaseException)
                for _, read in parts
            )
        )
        outcomes: dict[S, Measurement | BaseException] = {}
        calls = 0
        if reads:
            routes = [self._route(read) for read in reads]
            alone = [self._alone(read) for read in reads]
            outcomes, calls = await read_batch(self._runner, reads, routes, alone, self._group)
        results: dict[S, Measurement | BaseException] = {}
        for resource in resources:
            parts = spread[resource]
            if isinstance(parts, BaseException):
                results[resource] = parts
            elif resource.many is None:
                results[resource] = outcomes[parts[0][1]]
            elif not parts:
                results[resource] = self._none_matched(resource)
            else:
                results[resource] = gather([(key, outcomes[read]) for key, read in parts])
        down = [o for o in results.values() if isinstance(o, BackendUnavailable)]
        if down and len(down) == len(results):
            raise down[0]  # no server answered a SCAN (the connection itself failed)
        return results, calls + scans

    async def _spread(self, resources: Sequence[S]) -> tuple[dict[S, _Parts[S]], int]:
        """Each resource's keys (SCAN for a glob not resolved lately), and the SCAN calls."""
        globs = list(
            dict.fromkeys(
                r.many for r in resources if r.many is not None and r.many.pattern is not None
            )
        )
        resolved = await asyncio.gather(*map(self._globs.keys, globs), return_exceptions=True)
        matched: dict[KeySet, tuple[str, ...] | BaseException] = {}
        scans = 0
        for keys, outcome in zip(globs, resolved, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # a cancel
            matched[keys] = outcome if isinstance(outcome, BaseException) else outcome[0]
            scans += 0 if isinstance(outcome, BaseException) else outcome[1]
        spread: dict[S, _Parts[S]] = {}
        for resource in resources:
            many = resource.many
            if many is None:
                spread[resource] = [("", resource)]
                continue
            names = many.names if many.pattern is None else matched[many]
            if isinstance(names, BaseException):
                spread[resource] = names
            else:
                spread[resource] = [(name, resource.part(name)) for name in names]
        return spread, scans

    def _none_matched(self, resource: S) -> Measurement | BaseException:
        """The outcome of a glob that matches no key: 0, KEDA's length of a missing key."""
        return Measurement(0.0, {KEYS: 0.0})

    @abstractmethod
    def _route(self, read: S) -> list[str]:
        """The keys of one key's read (what routes it on a Cluster)."""

    def _alone(self, read: S) -> bool:
        """Whether a read touches keys it cannot declare, so a Cluster reads it alone."""
        return False

    @abstractmethod
    async def _group(self, reads: Sequence[S]) -> Sequence[Measurement | Exception]:
        """One script call for reads that one server holds: each one's outcome, in order."""

    async def aclose(self) -> None:
        self._globs.aclose()
        await self._runner.aclose()
