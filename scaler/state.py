"""State that spans polls: how long a fact read from a broker has held its value.

KEDA's persistent-lag rule needs to know how long a Kafka partition's committed offset has not
moved, which no single read tells. A :class:`scaler.backends.base.History` answers, for a batch
of ``(key, value)`` facts, the seconds each key has held its value (0 when new or changed). Keys
are digests a backend derives from what it reads (:func:`scaler.backends.base.state_key`), never
a secret. Writes are idempotent (the same value keeps its first sighting), so any number of
reads, shared or not, agree.

* :class:`MemoryHistory` keeps it in this process (the default, one replica): entries unseen for
  ``ttl`` seconds are forgotten, so memory follows the live resources.
* :class:`FallbackHistory` puts a shared store in front of it (``scaler.state_redis``, several
  replicas): the shared answers are written through to memory, and while the store fails the
  memory answers, from the last shared facts on, with one WARNING per outage and the
  :class:`StateObserver` told; never an error and never a wrong 0 because the store is down.

Standard library only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Final, Protocol

log = logging.getLogger(__name__)

#: entries unseen for this long are forgotten (and expire in a shared store)
DEFAULT_TTL: Final = 3600.0
#: seconds a shared store may take to answer a batch before memory answers instead
DEFAULT_BUDGET: Final = 0.5
#: seconds between attempts on a failing shared store (memory answers meanwhile, at no cost)
DEFAULT_RETRY: Final = 2.0

Fact = tuple[str, Hashable]


class MemoryHistory:
    """First sightings of values, in this process, on its monotonic clock.

    :param ttl: seconds after which an entry nobody asked about is dropped
    :param clock: seconds on a monotonic clock (tests pass their own)
    """

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        # (value, first seen, last seen) by key
        self._seen: dict[str, tuple[Hashable, float, float]] = {}
        self._next_sweep: float | None = None

    async def unchanged_for(self, facts: Sequence[Fact]) -> list[float]:
        """Seconds each key has held its value: 0 when it is new or changed."""
        return self.observe(facts)

    def observe(self, facts: Sequence[Fact]) -> list[float]:
        """:meth:`unchanged_for` without the coroutine (the fallback path)."""
        now = self._clock()
        answers = []
        for key, value in facts:
            previous = self._seen.get(key)
            first = previous[1] if previous is not None and previous[0] == value else now
            self._seen[key] = (value, first, now)
            answers.append(now - first)
        self._sweep(now)
        return answers

    def known(self, facts: Sequence[Fact]) -> list[float]:
        """Seconds each key has held its value as far as this memory knows (0 when unknown or
        different), without recording anything: the hint a shared store starts a lost key from."""
        now = self._clock()
        answers = []
        for key, value in facts:
            previous = self._seen.get(key)
            answers.append(
                now - previous[1] if previous is not None and previous[0] == value else 0
            )
        return answers

    def record(self, facts: Sequence[Fact], unchanged: Sequence[float]) -> None:
        """Take a shared store's answers as this memory's own (written through)."""
        now = self._clock()
        for (key, value), seconds in zip(facts, unchanged, strict=True):
            self._seen[key] = (value, now - seconds, now)
        self._sweep(now)

    def _sweep(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + self._ttl
        elif now > self._next_sweep:
            self._next_sweep = now + self._ttl
            for stale in [k for k, v in self._seen.items() if now - v[2] > self._ttl]:
                del self._seen[stale]

    def __len__(self) -> int:
        return len(self._seen)

    async def aclose(self) -> None:
        """Nothing to close."""


class SharedStore(Protocol):
    """A store several replicas share (``scaler.state_redis.RedisHistory``)."""

    async def unchanged_for(self, facts: Sequence[Fact], hints: Sequence[float]) -> list[float]:
        """Seconds each key has held its value on the store's clock; a key the store does not
        hold starts from its hint (what this replica's memory knows of the same value)."""

    async def aclose(self) -> None:
        """Close the store's connections."""


class StateObserver(Protocol):
    """Where the state store's health is reported (``scaler.metrics.ScalerMetrics``)."""

    def state_store(self, up: bool, error: bool) -> None:
        """The outcome of one attempt on the shared store (``error``: it failed)."""


class FallbackHistory:
    """A shared store, with this process's memory written through and answering while it fails.

    :param store: the shared store
    :param memory: this process's memory
    :param observer: told of each attempt's outcome
    :param budget: seconds one batch may wait for the store
    :param retry: seconds memory answers alone after a failure before the store is tried again
    :param describe: how the store is named in logs (its address, password masked)
    """

    def __init__(
        self,
        store: SharedStore,
        memory: MemoryHistory,
        observer: StateObserver | None = None,
        *,
        budget: float = DEFAULT_BUDGET,
        retry: float = DEFAULT_RETRY,
        describe: str = "state store",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.memory = memory
        self._observer = observer
        self._budget = budget
        self._retry = retry
        self._describe = describe
        self._clock = clock
        self._retry_at: float | None = None  # set while the store is out
        self.degraded = False

    async def unchanged_for(self, facts: Sequence[Fact]) -> list[float]:
        """The shared answers, recorded in memory; memory's own while the store fails."""
        if not facts:
            return []
        if self._retry_at is not None and self._clock() < self._retry_at:
            return self.memory.observe(facts)
        try:
            async with asyncio.timeout(self._budget):
                answers = await self.store.unchanged_for(facts, self.memory.known(facts))
        except (TimeoutError, OSError, ConnectionError) as err:
            return self._degrade(
                facts,
                f"no answer within {self._budget:g}s"
                if isinstance(err, TimeoutError)
                else type(err).__name__,
            )
        except Exception as err:  # noqa: BLE001 - any store failure degrades, never an RPC error
            return self._degrade(facts, type(err).__name__)
        self.memory.record(facts, answers)
        if self.degraded:
            log.warning("%s answers again: persistent-lag state is shared again", self._describe)
        self.degraded = False
        self._retry_at = None
        self._report(up=True, error=False)
        return answers

    def _degrade(self, facts: Sequence[Fact], why: str) -> list[float]:
        # the reason is the exception's type only: a client's message may quote its URL
        if not self.degraded:
            log.warning(
                "%s unavailable (%s): answering from this replica's memory, which other "
                "replicas do not share, until it is back",
                self._describe,
                why,
            )
        self.degraded = True
        self._retry_at = self._clock() + self._retry
        self._report(up=False, error=True)
        return self.memory.observe(facts)

    def _report(self, up: bool, error: bool) -> None:
        if self._observer is not None:
            self._observer.state_store(up, error)

    async def aclose(self) -> None:
        await self.store.aclose()
