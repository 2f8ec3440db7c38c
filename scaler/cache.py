"""Single-flight + TTL coalescing of identical measurements.

KEDA calls ``GetMetrics`` then ``IsActive`` back to back on every poll and on every HPA sync, and
many ScaledObjects often watch the same queue. All of those callers ask the same question of the
broker; :class:`Coalescer` makes them share one answer:

* concurrent callers of one key await a single in-flight fetch ("shared");
* a successful result is reused for ``ttl`` seconds ("hit"); otherwise a new fetch starts ("miss");
* a failure reaches every caller waiting on that fetch but is never stored;
* the fetch runs in its own task and callers wait through :func:`asyncio.shield`, so a cancelled
  RPC never cancels a fetch that other callers are waiting on.

Standard library only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Outcome = Literal["hit", "miss", "shared"]

# Sweep expired entries after this many stores, so memory follows the live key set.
_SWEEP_EVERY = 1024


class Coalescer(Generic[K, V]):
    """Share one fetch per key among concurrent callers, and its result for ``ttl`` seconds.

    :param ttl: how long a successful result is reused, in seconds (0 disables reuse)
    :param on_outcome: called with ``"hit"``, ``"miss"`` or ``"shared"`` for every lookup
    :param clock: monotonic clock, injectable for tests
    :param share: False turns coalescing off entirely (naive mode for benchmarks): every
        lookup runs its own fetch, as KEDA's built-in scalers do
    """

    def __init__(
        self,
        ttl: float,
        on_outcome: Callable[[Outcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        share: bool = True,
    ) -> None:
        self.ttl = ttl if share else 0.0
        self.share = share
        self._on_outcome = on_outcome
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._inflight: dict[K, asyncio.Task[V]] = {}
        self._stores = 0

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """The value for ``key``: cached if younger than the TTL, else fetched (or joined)."""
        if not self.share:
            self._count("miss")
            return await fetch()
        cached = self.fresh(key)
        if cached is not None:
            return cached
        task = self._inflight.get(key)
        if task is None:
            self._count("miss")
            task = asyncio.get_running_loop().create_task(self._run(key, fetch))
            self._inflight[key] = task
            task.add_done_callback(_consume_exception)
        else:
            self._count("shared")
        return await asyncio.shield(task)

    def fresh(self, key: K) -> V | None:
        """The value for ``key`` if one younger than the TTL is stored (counted as a hit)."""
        cached = self._values.get(key)
        if cached is not None and self.ttl > 0 and self._clock() - cached[0] < self.ttl:
            self._count("hit")
            return cached[1]
        return None

    def put(self, key: K, value: V) -> None:
        """Store a value read elsewhere (a watcher's batch), so lookups within the TTL reuse it."""
        if self.share:
            self._store(key, value)

    @property
    def inflight(self) -> int:
        """Number of fetches currently running."""
        return len(self._inflight)

    def __len__(self) -> int:
        return len(self._values)

    async def aclose(self) -> None:
        """Cancel every fetch in flight and forget every value (shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._values.clear()

    async def _run(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await fetch()
            self._store(key, value)
            return value
        finally:
            self._inflight.pop(key, None)

    def _store(self, key: K, value: V) -> None:
        now = self._clock()
        self._values[key] = (now, value)
        self._stores += 1
        if self._stores % _SWEEP_EVERY == 0:
            # drop values long expired, so memory follows the live key set
            horizon = self.ttl  # an older value is never served
            stale = [k for k, (at, _) in self._values.items() if now - at > horizon]
            for k in stale:
                del self._values[k]

    def _count(self, outcome: Outcome) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)


def _consume_exception(task: asyncio.Task[object]) -> None:
    # Every waiter may have been cancelled; retrieve the exception so asyncio does not log
    # "Task exception was never retrieved" for a failure that was already reported.
    if not task.cancelled():
        task.exception()
