"""A batch of reads through a topology's :class:`~.topology.Runner`, shared by the list and the
stream clients: the runner groups the reads (:meth:`~.topology.Runner.plan`: one group on a
standalone server or a Sentinel master, one per Cluster master), each group is one script call,
and every read gets its own outcome.

A failure that concerns one read (a key of another type, a missing group) is that read's
outcome; a server that cannot be reached fails the reads it holds, and the batch itself only
when no server answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from scaler.backends.base import Batch, Measurement
from scaler.backends.redis.topology import Runner
from scaler.errors import BackendUnavailable

R = TypeVar("R", bound=Hashable)

#: one script call for reads that one server holds: each read's measurement or error, in order
ReadGroup = Callable[[Sequence[R]], Awaitable[Sequence[Measurement | Exception]]]


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
