"""Shared watchers behind StreamIsActive: one reader per resource, one batch per connection.

A :class:`WatchHub` keeps one :class:`_Watcher` per :class:`~scaler.keys.ReadKey`, however many
streams subscribe to it, and groups the watchers of one :class:`~scaler.keys.ConnectionKey`
under a :class:`_Batch`: every ``interval`` the batch reads all of its resources through
:meth:`Engine.measure_batch` in as few broker requests as the backend allows (one script call
for every watched Redis list, one ListOffsets per Kafka leader, one management call per RabbitMQ
vhost), and hands each result, a :class:`~scaler.backends.base.Measurement` or the
:class:`~scaler.errors.ScalerError` it raised, to every subscriber of that resource. The reads
also refresh the coalescing cache, so polls in between are served from it.

Broker load is bounded per connection, not per stream: a batch never starts sooner than
``interval`` after the previous one, nor sooner than its cost (broker requests) divided by
``max_requests`` per second. A new watcher wakes its batch at once, so a new stream gets the
current state without waiting for the interval.

Subscribers keep only the latest item: a slow stream skips stale measurements instead of
queueing them. Activity is not decided here: each subscriber has the engine assess the item
with its own trigger's thresholds, so streams with different activation values share one
watcher. A watcher stops when its last subscriber leaves, and a batch when its last watcher
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from typing import TYPE_CHECKING

from scaler.backends.base import Measurement
from scaler.errors import InternalError, ScalerError

if TYPE_CHECKING:
    from scaler.engine import Engine, Parsed

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
    """The subscribers of one resource and the last item read for it."""

    def __init__(self, parsed: Parsed, batch: _Batch) -> None:
        self.parsed = parsed
        self.batch = batch
        self.subscribers: set[Subscription] = set()
        self.latest: Item | None = None


class _Batch:
    """The watchers of one connection, read together by one task."""

    def __init__(self) -> None:
        self.watchers: dict[Hashable, _Watcher] = {}
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class WatchHub:
    """Watchers by resource, batched by connection; :meth:`subscribe` joins or starts them.

    :param engine: reads resources (coalesced with RPC reads)
    :param interval: seconds between batches, per backend name
    :param on_count: told the number of watchers whenever it changes (metrics)
    :param share: False gives every subscription a watcher and a batch of its own (naive mode
        for benchmarks: what one poller per ScaledObject costs)
    :param max_requests: broker requests per second one connection's batches may cost
    """

    def __init__(
        self,
        engine: Engine,
        interval: Callable[[str], float],
        on_count: Callable[[int], None] | None = None,
        share: bool = True,
        max_requests: float = 40.0,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._on_count = on_count
        self._share = share
        self._max_requests = max_requests
        self._watchers: dict[Hashable, _Watcher] = {}
        self._batches: dict[Hashable, _Batch] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    @property
    def batches(self) -> int:
        """Connections currently read by a batch task."""
        return len(self._batches)

    def subscribers(self, parsed: Parsed) -> int:
        """How many streams share the watcher of this trigger's resource (0 if none)."""
        watcher = self._watchers.get(parsed.key)
        return 0 if watcher is None else len(watcher.subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self, parsed: Parsed) -> AsyncIterator[Subscription]:
        """Receive every read of the trigger's resource until the block exits or the hub closes."""
        subscription = Subscription()
        if self._closed:
            subscription.close()
            yield subscription
            return
        # naive mode: a watcher and a batch of its own for every subscription
        key: Hashable = parsed.key if self._share else (parsed.key, id(subscription))
        watcher = self._watchers.get(key)
        if watcher is None:
            connection = parsed.key.connection
            batch_key: Hashable = connection if self._share else (connection, id(subscription))
            batch = self._batches.get(batch_key)
            if batch is None:
                batch = self._batches[batch_key] = _Batch()
                batch.task = asyncio.get_running_loop().create_task(
                    self._run(batch),
                    name=f"watch {parsed.backend} {parsed.trigger.resource_label()}",
                )
            watcher = self._watchers[key] = _Watcher(parsed, batch)
            batch.watchers[key] = watcher
            batch.wake.set()  # the new resource's state at once, not after the interval
            self._count()
        elif watcher.latest is not None:
            subscription.offer(watcher.latest)  # the current state at once
        watcher.subscribers.add(subscription)
        try:
            yield subscription
        finally:
            watcher.subscribers.discard(subscription)
            if not watcher.subscribers and self._watchers.get(key) is watcher:
                self._remove(key, watcher)

    def _remove(self, key: Hashable, watcher: _Watcher) -> None:
        del self._watchers[key]
        batch = watcher.batch
        batch.watchers.pop(key, None)
        if not batch.watchers:
            for batch_key, candidate in list(self._batches.items()):
                if candidate is batch:
                    del self._batches[batch_key]
            if batch.task is not None:
                batch.task.cancel()
        self._count()

    async def _run(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        while batch.watchers:
            batch.wake.clear()
            watchers = list(batch.watchers.values())
            first = watchers[0].parsed
            started = loop.time()
            try:
                results, cost = await self._engine.measure_batch([w.parsed for w in watchers])
            except Exception as err:  # a bug must not stop every stream of the connection
                log.exception("watcher batch of %s failed", first.trigger.resource_label())
                failure = InternalError(f"internal error while reading: {type(err).__name__}")
                results = dict.fromkeys((w.parsed.key for w in watchers), failure)
                cost = len(watchers)
            for watcher in watchers:
                item = results[watcher.parsed.key]
                previous, watcher.latest = watcher.latest, item
                if _same(previous, item):
                    continue  # nothing new: idle streams are not woken 40 times a second
                for subscription in tuple(watcher.subscribers):
                    subscription.offer(item)
            # the request budget holds unconditionally; the rest of the interval is skipped
            # when a new watcher joins, so a new stream gets its state at once
            budget_end = started + cost / self._max_requests
            await asyncio.sleep(max(budget_end - loop.time(), 0.0))
            remaining = started + self._interval(first.backend) - loop.time()
            if remaining > 0 and not batch.wake.is_set():
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that arrives as the event is set, and the batch would run on
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await batch.wake.wait()

    async def aclose(self) -> None:
        """End every subscription (streams then finish with status OK) and stop every batch."""
        self._closed = True
        watchers = list(self._watchers.values())
        batches = list(self._batches.values())
        self._watchers.clear()
        self._batches.clear()
        for watcher in watchers:
            for subscription in watcher.subscribers:
                subscription.close()
        for batch in batches:
            batch.watchers.clear()  # a batch ends at its next loop even if a cancel is lost
            batch.wake.set()
        tasks = [b.task for b in batches if b.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._count()

    def _count(self) -> None:
        if self._on_count is not None:
            self._on_count(len(self._watchers))


def _same(previous: Item | None, item: Item) -> bool:
    if isinstance(previous, Measurement) and isinstance(item, Measurement):
        return previous == item
    if isinstance(previous, ScalerError) and isinstance(item, ScalerError):
        return type(previous) is type(item) and str(previous) == str(item)
    return False
