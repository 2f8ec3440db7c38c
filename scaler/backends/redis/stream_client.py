"""The Redis client of the stream backends: every stream and group of a batch in one script call
per server, errors mapped.

Each read is one call of ``stream_scripts.STREAMS`` through the ``topology`` that reaches the
streams (one call on a standalone server or a Sentinel master, one per Cluster master: a stream
read touches only its own key, so no read has to go alone); ``stream_reply`` turns what it
returned into each resource's measurement or error.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaler.backends.base import Batch, Client, Measurement
from scaler.backends.redis import stream_reply
from scaler.backends.redis.connection import AnyConnection
from scaler.backends.redis.reads import read_batch
from scaler.backends.redis.stream_scripts import STREAMS, stream_arguments
from scaler.backends.redis.stream_trigger import RedisStream
from scaler.backends.redis.topology import Runner, runner


class StreamClient(Client[RedisStream]):
    """One redis-py client (with its own small connection pools) for one identity."""

    def __init__(self, connection: AnyConnection, timeout: float) -> None:
        self._runner: Runner = runner(connection, timeout)

    async def measure(self, resource: RedisStream) -> Measurement:
        # through the batch, so that a Cluster routes a single read as it routes many
        results, _ = await self.measure_many([resource])
        outcome = results[resource]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[RedisStream]) -> Batch[RedisStream]:
        """Every watched stream of this connection in one script call per server (watchers'
        batches); a missing stream or group, or a key of another type, fails its own resource
        only."""
        keys = [[resource.stream] for resource in resources]
        alone = [False] * len(resources)
        return await read_batch(self._runner, resources, keys, alone, self._group)

    async def _group(self, resources: Sequence[RedisStream]) -> Sequence[stream_reply.Outcome]:
        keys, argv = stream_arguments(resources)
        reply = await self._runner.run(STREAMS, keys, argv)
        return stream_reply.read(self._runner.where, resources, reply)

    async def aclose(self) -> None:
        await self._runner.aclose()
