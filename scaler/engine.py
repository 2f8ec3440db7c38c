"""From trigger metadata to a shared, bounded, observed measurement.

The engine owns the path every RPC takes below the gRPC layer::

    metadata --parse (memoised)--> Trigger --coalesce--> pool client --measure--> Measurement

* :meth:`Engine.trigger` selects the backend from the ``backend`` key and parses the rest; the
  outcome (trigger or MetadataError) is memoised per distinct metadata, because KEDA sends the
  same map on every call.
* :meth:`Engine.measure` coalesces by (backend, connection identity, resource), bounds the broker
  call by the backend timeout, retries once on a fresh client after a connection error (KEDA's
  rebuild-once rule), and reports each read to an :class:`Observer`.

It knows nothing of gRPC or Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from scaler.backends.base import (
    Backend,
    BackendClient,
    BatchClient,
    ClosableBackend,
    Evaluation,
    Measurement,
    Trigger,
)
from scaler.cache import Coalescer
from scaler.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    MetadataError,
    ScalerError,
)
from scaler.metadata import BACKEND_KEY, quote
from scaler.pool import BackendPool
from scaler.profiles import Profiles

log = logging.getLogger(__name__)

#: a hostile or broken request costs one cheap error, not a parse of megabytes
MAX_METADATA_KEYS: Final = 256
MAX_METADATA_BYTES: Final = 64 * 1024
# how much longer a caller waits than the shared read's own timeout, so the read reports it
_SAFETY_MARGIN: Final = 0.05


class Observer(Protocol):
    """Where the engine reports what it did (implemented by ``scaler.metrics.ScalerMetrics``)."""

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        """One broker read finished; ``reason`` is ``"ok"`` or the error's reason."""

    def measured(self, backend: str, resource: str, value: float) -> None:
        """A successful measurement of ``resource`` (a secret-free label)."""


class _NullObserver:
    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        pass

    def measured(self, backend: str, resource: str, value: float) -> None:
        pass


class CacheKey:
    """What a measurement is keyed by: (backend, connection identity, resource), hashed once.

    The dataclasses inside hash field by field; a parsed trigger keeps its key, so the hot path
    (a cache hit per KEDA call) never hashes them again.
    """

    __slots__ = ("_hash", "parts")

    def __init__(self, trigger: Trigger) -> None:
        self.parts = (trigger.backend, trigger.connection, trigger.resource)
        self._hash = hash(self.parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CacheKey) and other.parts == self.parts

    def __repr__(self) -> str:
        return f"CacheKey({self.parts[0]}, {type(self.parts[2]).__name__})"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed trigger with what every RPC derives from it, computed once."""

    trigger: Trigger
    key: CacheKey
    metric_name: str


class Engine:
    """Parses triggers and measures them through the coalescer and the pool.

    :param backends: the registry, by name
    :param pool: clients per connection identity
    :param cache: coalescer of measurements
    :param backend_timeout: upper bound of one broker read, retry included, in seconds
    :param observer: receives read outcomes and values
    :param parse_cache_size: distinct metadata maps whose parse outcome is remembered
    """

    def __init__(
        self,
        backends: Mapping[str, Backend],
        pool: BackendPool,
        cache: Coalescer[Measurement],
        backend_timeout: float,
        observer: Observer | None = None,
        parse_cache_size: int = 20_000,
    ) -> None:
        self.backends = backends
        self.pool = pool
        self.cache = cache
        self.backend_timeout = backend_timeout
        self._observer: Observer = observer or _NullObserver()
        self._parsed: OrderedDict[Hashable, Parsed | MetadataError] = OrderedDict()
        self._parse_cache_size = parse_cache_size
        self.profiles: Profiles | None = None

    def set_profiles(self, profiles: Profiles | None) -> None:
        """Use these connection profiles from now on (metadata parses again under them)."""
        self.profiles = profiles
        self._parsed.clear()

    def trigger(self, metadata: Mapping[str, str]) -> Trigger:
        """Parse ``scalerMetadata``; raises :class:`MetadataError` listing every problem."""
        return self.parse(metadata).trigger

    def parse(self, metadata: Mapping[str, str], memo_key: bytes | None = None) -> Parsed:
        """Parse ``scalerMetadata`` (memoised); raises :class:`MetadataError`.

        :param memo_key: the request's deterministic serialization, if the caller has it: a
            key made in C instead of walking the map in Python (the gRPC hot path)
        """
        if memo_key is None:
            _check_size(metadata)
            key: Hashable = frozenset(metadata.items())
        else:
            if len(metadata) > MAX_METADATA_KEYS or len(memo_key) > MAX_METADATA_BYTES:
                _check_size(metadata)
            key = memo_key
        outcome = self._parsed.get(key)
        if outcome is None:
            try:
                trigger = self._parse(metadata)
                outcome = Parsed(trigger, CacheKey(trigger), trigger.metric_name())
            except MetadataError as err:
                outcome = err
            self._parsed[key] = outcome
            if len(self._parsed) > self._parse_cache_size:
                self._parsed.popitem(last=False)
        if isinstance(outcome, MetadataError):
            raise MetadataError(outcome.problems)
        return outcome

    def _parse(self, metadata: Mapping[str, str]) -> Trigger:
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
        return backend.parse(metadata)

    async def measure(
        self,
        trigger: Trigger,
        *,
        budget: float | None = None,
        fresh: bool = False,
        key: CacheKey | None = None,
    ) -> Measurement:
        """The trigger's resource, read at most once per coalescing window.

        :param budget: how long this caller waits (its own deadline); the shared read itself is
            bounded by ``backend_timeout`` so other callers are not cut short by this one
        :param fresh: bypass the TTL (watchers), still joining a read already in flight
        :param key: the trigger's cache key, if the caller has it (see :class:`Parsed`)
        """
        if key is None:
            key = CacheKey(trigger)
        if not fresh:
            # the common case under KEDA's polling: no timer, no task, no await
            cached = self.cache.fresh(key)
            if cached is not None:
                return cached
        if budget is None or budget >= self.backend_timeout:
            # the shared read times itself out (and reports it); this is only a safety net
            wait = self.backend_timeout + _SAFETY_MARGIN
        else:
            wait = budget
        try:
            async with asyncio.timeout(wait):
                return await self.cache.get(
                    key, lambda: self._read(trigger), max_age=0 if fresh else None
                )
        except TimeoutError:
            raise BackendTimeout(
                f"{trigger.backend} {trigger.resource_label()}: "
                f"no answer within {min(wait, self.backend_timeout):.3g}s"
            ) from None

    async def measure_batch(
        self, triggers: Sequence[Trigger]
    ) -> tuple[dict[Hashable, Measurement | ScalerError], int]:
        """Fresh reads of many resources on one connection, in as few broker requests as the
        backend allows (watchers); results also refresh the coalescing cache.

        :param triggers: triggers on one (backend, connection), one per resource
        :returns: per resource, its measurement or error; and the broker requests it cost
        """
        first = triggers[0]
        resources = list(dict.fromkeys(t.resource for t in triggers))
        labels = {t.resource: t.resource_label() for t in triggers}
        keys = {t.resource: CacheKey(t) for t in triggers}
        start = time.perf_counter()
        reason = "cancelled"
        try:
            async with asyncio.timeout(self.backend_timeout):
                raw, cost = await self._batch_with_rebuild(first, resources)
            reason = "ok"
        except TimeoutError:
            reason = BackendTimeout.reason
            error: ScalerError = BackendTimeout(
                f"{first.backend} {first.resource_label()} (read with {len(resources) - 1} more): "
                f"no answer within {self.backend_timeout:.3g}s"
            )
            return dict.fromkeys(resources, error), len(resources)
        except ScalerError as err:
            reason = err.reason if isinstance(err, BackendError) else "error"
            return dict.fromkeys(resources, err), len(resources)
        finally:
            self._observer.backend_read(first.backend, reason, time.perf_counter() - start)
        results: dict[Hashable, Measurement | ScalerError] = {}
        for resource in resources:
            outcome = raw.get(resource)
            if isinstance(outcome, Measurement):
                self.cache.put(keys[resource], outcome)
                self._observer.measured(first.backend, labels[resource], outcome.value)
                results[resource] = outcome
            elif isinstance(outcome, ScalerError):
                results[resource] = outcome
            else:
                log.error("batch read of %s failed: %r", labels[resource], outcome)
                results[resource] = ScalerError("internal error while reading; see the log")
        return results, cost

    async def _batch_with_rebuild(
        self, trigger: Trigger, resources: list[Hashable]
    ) -> tuple[dict[Hashable, Measurement | BaseException], int]:
        for attempt in (1, 2):
            client = self.pool.get(trigger.backend, trigger.connection)
            try:
                return await _read_many(client, resources)
            except BackendUnavailable as err:
                if attempt == 2 or self.pool.is_new(client):
                    raise
                log.info("rebuilding %s client after: %s", trigger.backend, err)
                await self.pool.invalidate(trigger.backend, trigger.connection, client)
        raise AssertionError("unreachable")

    async def evaluate(
        self, trigger: Trigger, *, budget: float | None = None, key: CacheKey | None = None
    ) -> Evaluation:
        """Measure and apply the trigger's options: the metric value and the activity."""
        return trigger.evaluate(await self.measure(trigger, budget=budget, key=key))

    async def _read(self, trigger: Trigger) -> Measurement:
        start = time.perf_counter()
        reason = "cancelled"  # unless it ends otherwise: shutdown cancels reads in flight
        try:
            async with asyncio.timeout(self.backend_timeout):
                measurement = await self._read_with_rebuild(trigger)
            reason = "ok"
        except TimeoutError:
            reason = BackendTimeout.reason
            raise BackendTimeout(
                f"{trigger.backend} {trigger.resource_label()}: "
                f"no answer within {self.backend_timeout:.3g}s"
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
            self._observer.backend_read(trigger.backend, reason, time.perf_counter() - start)
        self._observer.measured(trigger.backend, trigger.resource_label(), measurement.value)
        return measurement

    async def _read_with_rebuild(self, trigger: Trigger) -> Measurement:
        client = self.pool.get(trigger.backend, trigger.connection)
        try:
            return await client.measure(trigger.resource)
        except BackendUnavailable as err:
            if self.pool.is_new(client):
                raise  # the broker is down, not this client's connections
            # A pooled connection may have died with the broker; one retry on a fresh client
            # tells a restarted broker from a down one (KEDA rebuilds its scaler the same way).
            log.info("rebuilding %s client after: %s", trigger.backend, err)
            await self.pool.invalidate(trigger.backend, trigger.connection, client)
            client = self.pool.get(trigger.backend, trigger.connection)
            return await client.measure(trigger.resource)

    async def aclose(self) -> None:
        """Cancel shared reads in flight, close every backend client, then the backends."""
        await self.cache.aclose()
        await self.pool.aclose_all()
        for backend in self.backends.values():
            if isinstance(backend, ClosableBackend):
                backend.close()


async def _read_many(
    client: BackendClient, resources: list[Hashable]
) -> tuple[dict[Hashable, Measurement | BaseException], int]:
    if isinstance(client, BatchClient):
        return await client.measure_many(resources)
    # no batch API: one read per resource, concurrently; a connection failure fails the batch
    outcomes = await asyncio.gather(*(client.measure(r) for r in resources), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BackendUnavailable) or (
            isinstance(outcome, BaseException) and not isinstance(outcome, Exception)
        ):
            raise outcome
    return dict(zip(resources, outcomes, strict=True)), len(resources)


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
