"""The keys a glob matches, per connection: SCAN through the topology's runner (every master of a
Cluster), kept for the trigger's ``globRefreshSeconds``, so that polls and watchers reuse one
resolution and a key created later counts within that time.

One client (one connection identity) owns one :class:`Globs`: a resolution is shared by every
trigger of the connection with the same pattern, ``maxKeys`` and refresh, and concurrent asks
share one SCAN pass. A pattern matching more than ``maxKeys`` keys is
:class:`~scaler.errors.UnsupportedResource`, kept as long as a resolution (SCAN stops there, and
a watcher would otherwise repeat the pass every cycle); a SCAN that fails is not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from scaler.backends.redis.keyset import KeySet
from scaler.backends.redis.topology import Runner
from scaler.errors import UnsupportedResource

#: what a pass found: the keys (sorted; more than ``maxKeys`` when too many) and its SCAN calls
Found = tuple[tuple[str, ...], int]


class Globs:
    """The resolutions of one connection's globs.

    :param clock: monotonic seconds (a test's own clock)
    """

    def __init__(self, runner: Runner, clock: Callable[[], float] = time.monotonic) -> None:
        self._runner = runner
        self._clock = clock
        self._resolved: dict[KeySet, tuple[float, tuple[str, ...]]] = {}
        self._scanning: dict[KeySet, asyncio.Task[Found]] = {}

    async def keys(self, keys: KeySet) -> tuple[tuple[str, ...], int]:
        """The keys the glob of ``keys`` matches, sorted, and the SCAN calls this ask cost (0
        when resolved already, or by a pass another ask started)."""
        assert keys.pattern is not None
        kept = self._resolved.get(keys)
        if kept is not None and self._clock() - kept[0] < keys.refresh:
            return self._checked(keys, kept[1]), 0
        task = self._scanning.get(keys)
        started = task is None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._pass(keys))
            self._scanning[keys] = task
            task.add_done_callback(lambda done: self._done(keys, done))
        # a caller's deadline cancels its wait, not the pass that others (and the next ask) share
        found, calls = await asyncio.shield(task)
        return self._checked(keys, found), calls if started else 0

    async def _pass(self, keys: KeySet) -> Found:
        assert keys.pattern is not None
        at = self._clock()  # the refresh counts from the pass's start: a conservative age
        found, calls = await self._runner.scan(keys.pattern, keys.max_keys)
        matched = tuple(sorted(found))
        now = self._clock()
        for stale in [k for k, (when, _) in self._resolved.items() if now - when >= k.refresh]:
            del self._resolved[stale]
        self._resolved[keys] = (at, matched)
        return matched, calls

    def _done(self, keys: KeySet, task: asyncio.Task[Found]) -> None:
        if self._scanning.get(keys) is task:
            del self._scanning[keys]
        if not task.cancelled():
            task.exception()  # retrieved: every asker may have given up waiting

    def _checked(self, keys: KeySet, found: tuple[str, ...]) -> tuple[str, ...]:
        if len(found) > keys.max_keys:
            raise UnsupportedResource(
                f"{self._runner.where}: the pattern {keys.pattern!r} matches at least "
                f"{len(found)} keys, more than maxKeys ({keys.max_keys}): narrow the pattern, or "
                "raise maxKeys (every key is read in the same script call)"
            )
        return found

    def aclose(self) -> None:
        """Stop the passes in flight."""
        for task in self._scanning.values():
            task.cancel()
        self._scanning.clear()
        self._resolved.clear()
