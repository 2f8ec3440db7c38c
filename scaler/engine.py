"""From trigger metadata to a shared, bounded, observed measurement, and the trigger's view of it.

The engine owns the path every RPC and every watcher takes below the gRPC layer::

    metadata --parse (memoised)--> Parsed --coalesce--> pool client --read--> Measurement
                                                                      --assess--> Evaluation

* :meth:`Engine.parse` selects the backend from the ``backend`` key and parses the rest; the
  outcome (a :class:`Parsed` or a MetadataError) is memoised per distinct metadata, because KEDA
  sends the same map on every call, unary or stream.
* :meth:`Engine.measure` coalesces by :class:`~scaler.keys.ReadKey`; :meth:`measure_batch` reads
  many resources of one connection at once (watchers). Both go through one read path,
  :meth:`Engine._attempt`: bounded by the backend timeout, retried once on a fresh client after
  a connection error (KEDA's rebuild-once rule), reported to an :class:`Observer`; then each
  measurement gets the facts that span reads (``scaler.state``: in memory, or shared).
* :meth:`Engine.assess` is the one place a measurement becomes a value and an activity.

It knows nothing of gRPC or Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from scaler.backends.base import AnyBackend, Client, Evaluation, History, Measurement, Trigger
from scaler.cache import Coalescer
from scaler.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    InternalError,
    MetadataError,
    ScalerError,
)
from scaler.keys import ConnectionKey, ReadKey
from scaler.metadata import BACKEND_KEY
from scaler.pool import BackendPool
from scaler.profiles import Profiles
from scaler.state import MemoryHistory
from scaler.values import quote

log = logging.getLogger(__name__)

T = TypeVar("T")

#: a hostile or broken request costs one cheap error, not a parse of megabytes
MAX_METADATA_KEYS: Final = 256
MAX_METADATA_BYTES: Final = 64 * 1024
# how much longer a caller waits than the shared read's own timeout, so the read reports it
_SAFETY_MARGIN: Final = 0.05


class Observer(Protocol):
    """Where the engine reports what it did (implemented by ``scaler.metrics.ScalerMetrics``)."""

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        """One broker read finished; ``reason`` is ``"ok"`` or the error's reason."""

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        """A successful measurement of ``resource`` (a secret-free label)."""

    def coalesced(self, result: str) -> None:
        """A measurement lookup was a ``hit``, a ``miss`` or ``shared`` (the coalescer's)."""

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        """A read of ``resource`` failed (its own error, or its batch's)."""


class Observers:
    """Several observers as one: each receives every report, in order."""

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        for observer in self._observers:
            observer.backend_read(backend, reason, seconds)

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        for observer in self._observers:
            observer.measured(backend, resource, measurement)

    def coalesced(self, result: str) -> None:
        for observer in self._observers:
            observer.coalesced(result)

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        for observer in self._observers:
            observer.failed(backend, resource, error)


class _NullObserver:
    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        pass

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        pass

    def coalesced(self, result: str) -> None:
        pass

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed trigger with what every RPC derives from it, computed once.

    :param backend: the backend's name (``backend: <name>``)
    :param key: what the trigger reads (connection key + resource), hashed once
    :param metric_name: KEDA's metric name for the trigger
    """

    backend: str
    trigger: Trigger[Any, Any]
    key: ReadKey
    metric_name: str

    @property
    def target(self) -> float:
        return self.trigger.target


class Engine:
    """Parses triggers, measures them through the coalescer and the pool, and assesses them.

    :param backends: the registry, by name
    :param pool: clients per connection key
    :param cache: coalescer of measurements
    :param backend_timeout: upper bound of one broker read, retry included, in seconds
    :param observer: receives read outcomes and values
    :param history: facts that span reads (Kafka's persistent lag)
    :param parse_cache_size: distinct metadata maps (and requests) whose parse is remembered
    """

    def __init__(
        self,
        backends: Mapping[str, AnyBackend],
        pool: BackendPool,
        cache: Coalescer[ReadKey, Measurement],
        backend_timeout: float,
        observer: Observer | None = None,
        history: History | None = None,
        parse_cache_size: int = 20_000,
    ) -> None:
        self.backends = backends
        self.pool = pool
        self.cache = cache
        self.backend_timeout = backend_timeout
        self.history = history if history is not None else MemoryHistory()
        self._observer: Observer = observer or _NullObserver()
        # parse outcomes by metadata map, and the same outcomes by request serialization
        self._by_metadata: OrderedDict[Hashable, Parsed | MetadataError] = OrderedDict()
        self._by_request: OrderedDict[Hashable, Parsed | MetadataError] = OrderedDict()
        self._parse_cache_size = parse_cache_size
        self.profiles: Profiles | None = None

    def set_profiles(self, profiles: Profiles | None) -> None:
        """Use these connection profiles from now on (metadata parses again under them)."""
        self.profiles = profiles
        self._by_metadata.clear()
        self._by_request.clear()

    def parse(self, metadata: Mapping[str, str], memo_key: bytes | None = None) -> Parsed:
        """Parse ``scalerMetadata`` (memoised); raises :class:`MetadataError` listing every problem.

        :param memo_key: the request's deterministic serialization, if the caller has it: a
            key made in C instead of walking the map in Python (the gRPC hot path)
        """
        outcome: Parsed | MetadataError | None
        if memo_key is None:
            _check_size(metadata)
            outcome = self._outcome(metadata)
        else:
            if len(metadata) > MAX_METADATA_KEYS or len(memo_key) > MAX_METADATA_BYTES:
                _check_size(metadata)
            outcome = self._by_request.get(memo_key)
            if outcome is None:
                # every ScaledObject's request differs (its name is in it) while many share one
                # metadata map: the request memo only points at the metadata memo's outcome
                outcome = self._outcome(metadata)
                self._remember(self._by_request, memo_key, outcome)
        if isinstance(outcome, MetadataError):
            raise MetadataError(outcome.problems)
        return outcome

    def _outcome(self, metadata: Mapping[str, str]) -> Parsed | MetadataError:
        key = frozenset(metadata.items())
        outcome = self._by_metadata.get(key)
        if outcome is None:
            try:
                outcome = self._parse(metadata)
            except MetadataError as err:
                outcome = err
            self._remember(self._by_metadata, key, outcome)
        return outcome

    def _remember(
        self,
        memo: OrderedDict[Hashable, Parsed | MetadataError],
        key: Hashable,
        outcome: Parsed | MetadataError,
    ) -> None:
        memo[key] = outcome
        if len(memo) > self._parse_cache_size:
            memo.popitem(last=False)

    def _parse(self, metadata: Mapping[str, str]) -> Parsed:
        if self.profiles is not None:
            metadata = self.profiles.resolve(metadata)
        name = metadata.get(BACKEND_KEY, "").strip()
        if not name:
            raise MetadataError(
                [f"missing required parameter {BACKEND_KEY} (one of {', '.join(self.backends)})"]
            )
        backend = self.backends.get(name)
        if backend is None:
            raise MetadataError(
                [f"{BACKEND_KEY}: {quote(name)} must be one of [{', '.join(self.backends)}]"]
            )
        trigger = backend.parse(metadata)
        key = ReadKey(ConnectionKey(name, trigger.connection), trigger.resource)
        return Parsed(name, trigger, key, trigger.metric_name())

    async def measure(self, parsed: Parsed, *, budget: float | None = None) -> Measurement:
        """The trigger's resource, read at most once per coalescing window.

        :param budget: how long this caller waits (its own deadline); the shared read itself is
            bounded by ``backend_timeout`` so other callers are not cut short by this one
        """
        # the common case under KEDA's polling: no timer, no task, no await
        cached = self.cache.fresh(parsed.key)
        if cached is not None:
            return cached
        if budget is None or budget >= self.backend_timeout:
            # the shared read times itself out (and reports it); this is only a safety net
            wait = self.backend_timeout + _SAFETY_MARGIN
        else:
            wait = budget
        try:
            async with asyncio.timeout(wait):
                return await self.cache.get(parsed.key, lambda: self._read(parsed))
        except TimeoutError:
            raise BackendTimeout(
                f"{parsed.backend} {parsed.trigger.resource_label()}: "
                f"no answer within {min(wait, self.backend_timeout):.3g}s"
            ) from None

    async def evaluate(self, parsed: Parsed, *, budget: float | None = None) -> Evaluation:
        """Measure and assess: the metric value and the activity KEDA gets."""
        return self.assess(parsed, await self.measure(parsed, budget=budget))

    def assess(self, parsed: Parsed, measurement: Measurement) -> Evaluation:
        """The trigger's options applied to a measurement: every RPC and stream decides here."""
        return parsed.trigger.evaluate(measurement)

    async def measure_batch(
        self, batch: Sequence[Parsed]
    ) -> tuple[dict[ReadKey, Measurement | ScalerError], int]:
        """Fresh reads of many resources on one connection, in as few broker requests as the
        backend allows (watchers); results also refresh the coalescing cache.

        :param batch: triggers on one connection key
        :returns: per read key, its measurement or error; and the broker requests it cost
        """
        first = batch[0]
        by_key = {parsed.key: parsed for parsed in batch}
        resources = [key.resource for key in by_key]
        what = f"{first.trigger.resource_label()} (read with {len(by_key) - 1} more)"
        try:
            raw, cost = await self._attempt(
                first.key.connection, what, lambda client: client.measure_many(resources)
            )
        except ScalerError as err:
            for parsed in by_key.values():
                self._observer.failed(parsed.backend, parsed.trigger.resource_label(), err)
            return dict.fromkeys(by_key, err), len(by_key)
        results: dict[ReadKey, Measurement | ScalerError] = {}
        for key, parsed in by_key.items():
            outcome = raw.get(key.resource)
            if isinstance(outcome, Measurement):
                measurement = await self._accept(parsed, outcome)
                self.cache.put(key, measurement)
                results[key] = measurement
            elif isinstance(outcome, ScalerError):
                self._observer.failed(parsed.backend, parsed.trigger.resource_label(), outcome)
                results[key] = outcome
            else:
                log.error("batch read of %s failed: %r", parsed.trigger.resource_label(), outcome)
                results[key] = InternalError("internal error while reading; see the log")
        return results, cost

    async def _read(self, parsed: Parsed) -> Measurement:
        resource = parsed.key.resource
        label = parsed.trigger.resource_label()
        try:
            measurement = await self._attempt(
                parsed.key.connection, label, lambda client: client.measure(resource)
            )
        except ScalerError as err:
            self._observer.failed(parsed.backend, label, err)
            raise
        return await self._accept(parsed, measurement)

    async def _attempt(
        self, key: ConnectionKey, what: str, read: Callable[[Client[Any]], Awaitable[T]]
    ) -> T:
        """The one read path: timeout, rebuild once after a connection error, observation."""
        start = time.perf_counter()
        reason = "cancelled"  # unless it ends otherwise: shutdown cancels reads in flight
        try:
            async with asyncio.timeout(self.backend_timeout):
                outcome = await self._with_rebuild(key, read)
            reason = "ok"
            return outcome
        except TimeoutError:
            reason = BackendTimeout.reason
            raise BackendTimeout(
                f"{key.backend} {what}: no answer within {self.backend_timeout:.3g}s"
            ) from None
        except BackendError as err:
            reason = err.reason
            raise
        except ScalerError:
            reason = "error"
            raise
        except Exception:
            reason = "bug"
            raise
        finally:
            self._observer.backend_read(key.backend, reason, time.perf_counter() - start)

    async def _with_rebuild(
        self, key: ConnectionKey, read: Callable[[Client[Any]], Awaitable[T]]
    ) -> T:
        client = self.pool.get(key)
        try:
            return await read(client)
        except BackendUnavailable as err:
            if self.pool.is_new(client):
                raise  # the broker is down, not this client's connections
            # A pooled connection may have died with the broker; one retry on a fresh client
            # tells a restarted broker from a down one (KEDA rebuilds its scaler the same way).
            log.info("rebuilding %s client after: %s", key.backend, err)
            await self.pool.invalidate(key, client)
            return await read(self.pool.get(key))

    async def _accept(self, parsed: Parsed, measurement: Measurement) -> Measurement:
        """A fresh measurement, with the facts that span reads, reported."""
        trigger = parsed.trigger
        measurement = await self.backends[parsed.backend].remember(
            trigger.connection, trigger.resource, measurement, self.history
        )
        self._observer.measured(parsed.backend, trigger.resource_label(), measurement)
        return measurement

    async def aclose(self) -> None:
        """Cancel shared reads in flight, close every backend client, then the backends."""
        await self.cache.aclose()
        await self.pool.aclose_all()
        for backend in self.backends.values():
            await backend.aclose()
        await self.history.aclose()


def _check_size(metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA_KEYS:
        raise MetadataError(
            [f"scalerMetadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are accepted"]
        )
    size = 0
    for key, value in metadata.items():
        size += len(key) + len(value)
        if size > MAX_METADATA_BYTES:
            raise MetadataError(
                [f"scalerMetadata is larger than {MAX_METADATA_BYTES} bytes; refused unread"]
            )
