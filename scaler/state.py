"""State that spans polls: when a fact read from a broker last changed.

KEDA's persistent-lag rule needs to know how long a Kafka partition's committed offset has not
moved, which no single read tells. :class:`MemoryHistory` remembers, per key a backend chooses
(connection identity and resource part), the value last seen and since when; keys unseen for
``ttl`` seconds are forgotten, so memory follows the live resources. Writes are idempotent (the
same value keeps its first sighting), so any number of reads, shared or not, agree.

One process keeps it in memory; several replicas will share it in Redis (DESIGN.md section 7).
It implements :class:`scaler.backends.base.History`. Standard library only.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

#: entries unseen for this long are forgotten
DEFAULT_TTL: Final = 3600.0


class MemoryHistory:
    """First sightings of values, in this process.

    :param ttl: seconds after which an entry nobody asked about is dropped
    """

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self._ttl = ttl
        # (value, first seen, last seen) by key, times on the callers' monotonic clock
        self._seen: dict[Hashable, tuple[Hashable, float, float]] = {}
        self._next_sweep: float | None = None

    def since(self, key: Hashable, value: Hashable, now: float) -> float:
        """When ``key`` was first seen holding ``value``: ``now`` if it is new or changed."""
        previous = self._seen.get(key)
        first = previous[1] if previous is not None and previous[0] == value else now
        self._seen[key] = (value, first, now)
        if self._next_sweep is None:
            self._next_sweep = now + self._ttl
        elif now > self._next_sweep:
            self._next_sweep = now + self._ttl
            for stale in [k for k, v in self._seen.items() if now - v[2] > self._ttl]:
                del self._seen[stale]
        return first

    def __len__(self) -> int:
        return len(self._seen)
