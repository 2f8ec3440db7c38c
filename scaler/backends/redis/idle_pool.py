"""A redis-py connection pool that gives back the sockets a burst opened, once they idle."""

from __future__ import annotations

import time
import weakref
from typing import Any, Final

from redis.asyncio.connection import AbstractConnection, BlockingConnectionPool

#: seconds an idle connection beyond the first stays open after a burst
_IDLE_CLOSE: Final = 5.0


class IdleClosingPool(BlockingConnectionPool):
    """A blocking pool that closes the sockets of connections idle for ``_IDLE_CLOSE`` seconds,
    keeping one open.

    redis-py keeps every connection a burst opened for the pool's lifetime. A paused Redis makes
    every read wait at once, so after one pause a client would hold up to its ``max_connections``
    sockets for good (found by the fault tests under load). A closed connection stays in the
    pool and reconnects when next needed.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._released: weakref.WeakKeyDictionary[AbstractConnection, float] = (
            weakref.WeakKeyDictionary()
        )

    async def release(self, connection: AbstractConnection) -> None:
        await super().release(connection)
        now = time.monotonic()
        self._released[connection] = now
        if len(self._available_connections) <= 1:
            return  # the usual case, one connection per client: nothing to trim, no second lock
        # under the condition get_connection() takes: no connection can be handed out meanwhile
        async with self._condition:
            idle = [c for c in self._available_connections if c.is_connected]
            for stale in idle[:-1]:  # the last released stays open
                if now - self._released.get(stale, now) > _IDLE_CLOSE:
                    await stale.disconnect()
