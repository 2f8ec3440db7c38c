"""One backend client per connection identity, shared by every trigger that names it.

Clients are keyed by :class:`~scaler.keys.ConnectionKey` (backend name, connection identity),
built when a trigger is parsed. They are built lazily by the backend (``Backend.connect`` does
no I/O; a client connects on
first use), so creation needs no lock: it happens synchronously on the event loop and two RPCs
can never build two clients for one identity. After a connection error the engine invalidates
the client and retries once on a fresh one (KEDA's "rebuild once on error"). Clients idle for
longer than ``idle_timeout`` are closed by :meth:`BackendPool.evict_idle`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from scaler.backends.base import AnyBackend, Client
from scaler.keys import ConnectionKey

log = logging.getLogger(__name__)

#: seconds an invalidated client stays open for the reads still using it
RETIRE_AFTER: Final = 5.0
#: seconds a new client must live before a failure rebuilds it
REBUILD_AFTER: Final = 1.0


class BackendPool:
    """Live clients by connection key.

    :param backends: the registry, by backend name
    :param idle_timeout: seconds without use after which :meth:`evict_idle` closes a client
    :param retire_after: seconds an invalidated client stays open for reads still using it
    :param rebuild_after: a client younger than this is not rebuilt after a failure
    """

    def __init__(
        self,
        backends: Mapping[str, AnyBackend],
        idle_timeout: float = 600.0,
        *,
        retire_after: float = RETIRE_AFTER,
        rebuild_after: float = REBUILD_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retire_after = retire_after
        self._rebuild_after = rebuild_after
        self._retiring: set[Client[Any]] = set()
        self._born: weakref.WeakKeyDictionary[Client[Any], float] = weakref.WeakKeyDictionary()
        self._backends = backends
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._clients: dict[ConnectionKey, tuple[Client[Any], float]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, key: ConnectionKey) -> Client[Any]:
        """The client for this identity, built on first use."""
        entry = self._clients.get(key)
        if entry is None:
            client = self._backends[key.backend].connect(key.connection)
            self._born[client] = self._clock()
        else:
            client = entry[0]
        self._clients[key] = (client, self._clock())
        return client

    def is_new(self, client: Client[Any]) -> bool:
        """Built less than ``rebuild_after`` seconds ago: rebuilding it again would not help.

        After a broker restart an old client may hold dead connections, so the engine rebuilds
        it once; a client built moments ago that fails is facing a broker that is down, and
        rebuilding on every failed read would only churn clients through the outage.
        """
        born = self._born.get(client)
        return born is not None and self._clock() - born < self._rebuild_after

    async def invalidate(self, key: ConnectionKey, client: Client[Any]) -> None:
        """Forget ``client`` (unless another caller already replaced it) and close it later.

        Other reads may still be using it: closing it under them would turn their answers into
        errors of ours, so it is closed after ``retire_after`` seconds (at once on shutdown).
        """
        entry = self._clients.get(key)
        if entry is not None and entry[0] is client:
            del self._clients[key]
        if client in self._retiring:
            return
        self._retiring.add(client)
        task = asyncio.get_running_loop().create_task(self._retire(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _retire(self, client: Client[Any]) -> None:
        try:
            await asyncio.sleep(self._retire_after)
        finally:
            if client in self._retiring:
                self._retiring.discard(client)
                await _close_quietly(client)

    async def evict_idle(self) -> int:
        """Close clients unused for ``idle_timeout`` seconds; returns how many."""
        now = self._clock()
        idle = [k for k, (_, used) in self._clients.items() if now - used > self._idle_timeout]
        for key in idle:
            client, _ = self._clients.pop(key)
            await _close_quietly(client)
        return len(idle)

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose_all(self) -> None:
        """Close every client, retiring ones included (shutdown)."""
        clients = [client for client, _ in self._clients.values()]
        self._clients.clear()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)
        clients += list(self._retiring)  # a retirement cancelled before it started
        self._retiring.clear()
        await asyncio.gather(*(_close_quietly(c) for c in clients))


async def _close_quietly(client: Client[Any]) -> None:
    try:
        await client.aclose()
    except Exception:  # a broken connection may fail to close; it is being dropped anyway
        log.debug("closing a backend client failed", exc_info=True)
