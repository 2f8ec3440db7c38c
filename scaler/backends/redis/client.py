"""The Redis client of the Redis list backends: every read in one round trip per server, errors
mapped.

Each read is one call of a server-side script (``scripts``): a plain length is KEDA's script,
which checks the key type first (LLEN for a list, SCARD for a set, ZCARD for a sorted set, HLEN
for a hash, 0 for a missing key, since Redis deletes empty lists; any other type is an error
naming the type); an age or a processing list is the ``READ`` script, which also returns the
oldest element, its hash field and Redis ``TIME``. A watcher batch reads every key of a
connection with one script call per server (``topology``: one on a standalone server or a
Sentinel master, one per Cluster master). ``reply`` turns what a script returned into
measurements.

This package is the only importer of redis-py.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaler.backends.base import Batch, Client, Measurement
from scaler.backends.redis import reply as replies
from scaler.backends.redis.connection import AnyConnection
from scaler.backends.redis.reads import read_batch
from scaler.backends.redis.scripts import LENGTHS, READ, plain, read_arguments
from scaler.backends.redis.topology import Runner, runner
from scaler.backends.redis.trigger import RedisList
from scaler.errors import UnsupportedResource

Outcome = Measurement | UnsupportedResource


class RedisClient(Client[RedisList]):
    """One redis-py client (with its own small connection pools) for one identity."""

    def __init__(self, connection: AnyConnection, timeout: float) -> None:
        self._runner: Runner = runner(connection, timeout)

    async def measure(self, resource: RedisList) -> Measurement:
        results, _ = await self.measure_many([resource])
        outcome = results[resource]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[RedisList]) -> Batch[RedisList]:
        """Every watched resource of this connection in one script call per server (watchers'
        batches); a server that cannot be reached fails its own resources only, unless it is
        the only one."""
        keys = [_keys(resource) for resource in resources]
        # a hash named by an element is a key the script cannot declare
        alone = [bool(resource.age and resource.age.hash_key) for resource in resources]
        return await read_batch(self._runner, resources, keys, alone, self._group)

    async def _group(self, resources: Sequence[RedisList]) -> Sequence[Outcome]:
        """One script call for resources that one server holds: KEDA's lengths script when they
        are all plain lengths, else the read script for all."""
        where = self._runner.where
        if all(plain(resource) for resource in resources):
            keys = [resource.key for resource in resources]
            reply = await self._runner.run(LENGTHS, keys, ())
            return [
                replies.length(where, key, reply[2 * i], reply[2 * i + 1])
                for i, key in enumerate(keys)
            ]
        keys, argv = read_arguments(resources)
        return replies.read(where, resources, await self._runner.run(READ, keys, argv))

    async def aclose(self) -> None:
        await self._runner.aclose()


def _keys(resource: RedisList) -> list[str]:
    return [resource.key] if resource.processing is None else [resource.key, resource.processing]
