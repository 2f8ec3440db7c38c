"""The Redis client of the stream backends: every stream and group of a batch in one script call
per server, errors mapped.

Each read is one call of ``stream_scripts.STREAMS`` through the ``topology`` that reaches the
streams (one call on a standalone server or a Sentinel master, one per Cluster master: a stream
read touches only its own key, so no read has to go alone), for a watcher batch and for every
stream a trigger names alike (``reads``); ``stream_reply`` turns what it returned into each
resource's measurement or error.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaler.backends.base import Measurement
from scaler.backends.redis import stream_reply
from scaler.backends.redis.reads import ScriptClient
from scaler.backends.redis.stream_scripts import STREAMS, stream_arguments
from scaler.backends.redis.stream_trigger import RedisStream
from scaler.errors import TargetNotFound


class StreamClient(ScriptClient[RedisStream]):
    """The streams and consumer groups of one identity."""

    def _route(self, read: RedisStream) -> list[str]:
        return [read.stream]

    async def _group(self, reads: Sequence[RedisStream]) -> Sequence[stream_reply.Outcome]:
        keys, argv = stream_arguments(reads)
        reply = await self._runner.run(STREAMS, keys, argv)
        return stream_reply.read(self._runner.where, reads, reply)

    def _none_matched(self, resource: RedisStream) -> Measurement | BaseException:
        """A glob matching no stream is what a missing stream is for the measure: 0 for a
        length or a lag (KEDA's answers), ``NOT_FOUND`` where the group is needed."""
        if resource.needs_group:
            return TargetNotFound(
                f"{self._runner.where}: no stream matches the pattern {resource.stream!r}, so "
                f"neither does its consumer group {resource.group!r} (pending entries and ages "
                "need the group)"
            )
        return super()._none_matched(resource)
