"""Shared watchers behind StreamIsActive: one reader per resource, however many streams.

A :class:`WatchHub` keeps one :class:`_Watcher` per (backend, connection identity, resource).
The watcher reads the resource every ``interval`` seconds through the engine (fresh reads that
also refresh the coalescing cache, so polls in between are served from it) and hands each result,
a :class:`~scaler.backends.base.Measurement` or the :class:`~scaler.errors.ScalerError` it raised,
to every subscriber. Subscribers keep only the latest item: a slow stream skips stale
measurements instead of queueing them. A watcher stops when its last subscriber leaves.

Activity is not decided here: each subscriber applies its own trigger's thresholds, so streams
with different activation values share one watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from typing import TYPE_CHECKING

from scaler.backends.base import Measurement, Trigger
from scaler.errors import ScalerError

if TYPE_CHECKING:
    from scaler.engine import Engine

log = logging.getLogger(__name__)

Item = Measurement | ScalerError


class Subscription:
    """One subscriber's mailbox: holds the latest item only; iteration ends when the hub closes."""

    def __init__(self) -> None:
        self._item: Item | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, item: Item) -> None:
        self._item = item
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        await self._ready.wait()
        self._ready.clear()
        if self._closed:
            raise StopAsyncIteration
        item, self._item = self._item, None
        assert item is not None
        return item


class _Watcher:
    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger
        self.subscribers: set[Subscription] = set()
        self.latest: Item | None = None
        self.task: asyncio.Task[None] | None = None


class WatchHub:
    """Watchers by resource; :meth:`subscribe` joins (or starts) the one for a trigger.

    :param engine: reads resources (coalesced with RPC reads)
    :param interval: seconds between reads, per backend name
    :param on_count: told the number of watchers whenever it changes (metrics)
    :param share: False gives every subscription a watcher of its own (naive mode for benchmarks)
    """

    def __init__(
        self,
        engine: Engine,
        interval: Callable[[str], float],
        on_count: Callable[[int], None] | None = None,
        share: bool = True,
    ) -> None:
        self._share = share
        self._engine = engine
        self._interval = interval
        self._on_count = on_count
        self._watchers: dict[Hashable, _Watcher] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    def subscribers(self, trigger: Trigger) -> int:
        """How many streams share the watcher of this trigger's resource (0 if none)."""
        watcher = self._watchers.get(_key(trigger))
        return 0 if watcher is None else len(watcher.subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self, trigger: Trigger) -> AsyncIterator[Subscription]:
        """Receive every read of the trigger's resource until the block exits or the hub closes."""
        subscription = Subscription()
        if self._closed:
            subscription.close()
            yield subscription
            return
        key = _key(trigger) if self._share else (_key(trigger), id(subscription))
        watcher = self._watchers.get(key)
        if watcher is None:
            watcher = self._watchers[key] = _Watcher(trigger)
            watcher.task = asyncio.get_running_loop().create_task(
                self._run(watcher), name=f"watch {trigger.backend} {trigger.resource_label()}"
            )
            self._count()
        elif watcher.latest is not None:
            subscription.offer(watcher.latest)  # the current state at once
        watcher.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            watcher.subscribers.discard(subscription)
            if not watcher.subscribers and self._watchers.get(key) is watcher:
                del self._watchers[key]
                self._count()
                if watcher.task is not None:
                    watcher.task.cancel()

    async def _run(self, watcher: _Watcher) -> None:
        trigger = watcher.trigger
        interval = self._interval(trigger.backend)
        while True:
            item: Item
            try:
                item = await self._engine.measure(trigger, fresh=True)
            except ScalerError as err:
                item = err
            except Exception as err:  # a bug must not kill the watcher of every stream on it
                log.exception("watcher of %s failed", trigger.resource_label())
                item = ScalerError(f"internal error while reading: {type(err).__name__}")
            watcher.latest = item
            for subscription in tuple(watcher.subscribers):
                subscription.offer(item)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """End every subscription (streams then finish with status OK) and stop every watcher."""
        self._closed = True
        watchers = list(self._watchers.values())
        self._watchers.clear()
        tasks = [w.task for w in watchers if w.task is not None]
        for watcher in watchers:
            for subscription in watcher.subscribers:
                subscription.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._count()

    def _count(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self._watchers))


def _key(trigger: Trigger) -> Hashable:
    return (trigger.backend, trigger.connection, trigger.resource)
