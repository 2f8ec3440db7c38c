"""The Redis client of the Redis list backends: every read in one round trip per server, errors
mapped.

Each read is one call of a server-side script (``scripts``): a plain length is KEDA's script,
which checks the key type first (LLEN for a list, SCARD for a set, ZCARD for a sorted set, HLEN
for a hash, 0 for a missing key, since Redis deletes empty lists; any other type is an error
naming the type); an age or a processing list is the ``READ`` script, which also returns the
oldest element, its hash field and Redis ``TIME``. A watcher batch reads every key of a
connection, and a trigger every key it names, with one script call per server (``reads`` and
``topology``: one on a standalone server or a Sentinel master, one per Cluster master).
``reply`` turns what a script returned into measurements.

This package is the only importer of redis-py.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaler.backends.base import Measurement
from scaler.backends.redis import reply as replies
from scaler.backends.redis.reads import ScriptClient
from scaler.backends.redis.scripts import LENGTHS, READ, plain, read_arguments
from scaler.backends.redis.trigger import RedisList
from scaler.errors import UnsupportedResource

Outcome = Measurement | UnsupportedResource


class RedisClient(ScriptClient[RedisList]):
    """The lists, sets, sorted sets and hashes of one identity."""

    def _route(self, read: RedisList) -> list[str]:
        return [read.key] if read.processing is None else [read.key, read.processing]

    def _alone(self, read: RedisList) -> bool:
        # a hash named by an element is a key the script cannot declare
        return bool(read.age and read.age.hash_key)

    async def _group(self, reads: Sequence[RedisList]) -> Sequence[Outcome]:
        """One script call for reads that one server holds: KEDA's lengths script when they
        are all plain lengths, else the read script for all."""
        where = self._runner.where
        if all(plain(read) for read in reads):
            keys = [read.key for read in reads]
            reply = await self._runner.run(LENGTHS, keys, ())
            return [
                replies.length(where, key, reply[2 * i], reply[2 * i + 1])
                for i, key in enumerate(keys)
            ]
        keys, argv = read_arguments(reads)
        return replies.read(where, reads, await self._runner.run(READ, keys, argv))
