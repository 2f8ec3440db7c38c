"""Every Prometheus series the service exports, built on an injected registry.

Names use the ``keda_queue_scaler_`` prefix, seconds as the unit and ``_total`` on counters.
Labels are bounded: RPC method and status code, backend name, error reason, coalescing outcome,
and a per-resource label (``host:port/db/list``; never credentials, never raw metadata) whose
series are capped at ``max_resources``, the least recently updated being dropped first.

Only this module and ``scaler.app`` import prometheus_client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import OrderedDict
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.errors import ScalerError

_PREFIX = "keda_queue_scaler"
# RPCs are sub-millisecond when coalesced and bounded by the backend timeout otherwise.
_RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_BACKEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ScalerMetrics:
    """The service's metrics; its methods are what the engine, cache and server report.

    :param registry: where the series live (a fresh one per test; the app's own in production)
    :param max_resources: distinct resources that keep last-value/last-success series
    """

    def __init__(self, registry: CollectorRegistry, max_resources: int = 1000) -> None:
        self._registry = registry
        # prometheus_client adds a `_created` series to every counter and histogram by default:
        # twice the series for no query anyone writes (the switch is the library's, global)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # the standard process, platform and garbage-collector series, on the injected registry
        # (resident memory, CPU seconds, open file descriptors, GC collections)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.registry = registry
        self._max_resources = max_resources
        self._resources: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.rpc_duration = Histogram(
            f"{_PREFIX}_rpc_duration_seconds",
            "Duration of external-scaler RPCs by method and gRPC status code "
            "(streams: time until the stream ended)",
            ["method", "code"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
        self.backend_duration = Histogram(
            f"{_PREFIX}_backend_request_duration_seconds",
            "Duration of broker reads by backend and outcome (ok, cancelled or the error reason)",
            ["backend", "outcome"],
            buckets=_BACKEND_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            f"{_PREFIX}_backend_errors_total",
            "Failed broker reads by backend and reason "
            "(unavailable, timeout, auth, permission, not_found, unsupported, error, bug)",
            ["backend", "reason"],
            registry=registry,
        )
        self.metadata_errors = Counter(
            f"{_PREFIX}_metadata_errors_total",
            "Distinct metadata errors told to a ScaledObject (each logged once at WARNING), by "
            "backend (unknown: a name no backend has) and reason of each problem (missing, "
            "invalid, conflict, backend, profile, size, metric_name)",
            ["backend", "reason"],
            registry=registry,
        )
        self.coalescing = Counter(
            f"{_PREFIX}_coalescing_total",
            "Measurement lookups: hit (served from the TTL cache), miss (started a broker read), "
            "shared (joined a read in flight)",
            ["result"],
            registry=registry,
        )
        self.open_streams = Gauge(
            f"{_PREFIX}_open_streams",
            "Streams currently open, by RPC",
            ["method"],
            registry=registry,
        )
        self.push_events = Counter(
            f"{_PREFIX}_push_events_total",
            "StreamIsActive messages sent, by backend and kind (initial state or activation)",
            ["backend", "kind"],
            registry=registry,
        )
        self.watchers = Gauge(
            f"{_PREFIX}_watchers",
            "Shared watchers polling a resource for StreamIsActive subscribers",
            registry=registry,
        )
        self.last_value = Gauge(
            f"{_PREFIX}_last_value",
            "Last value measured per resource",
            ["backend", "resource"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            f"{_PREFIX}_oldest_age_seconds",
            "Age of the oldest waiting item per resource, on the broker's clock (age modes)",
            ["backend", "resource"],
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{_PREFIX}_in_flight",
            "Work being processed per resource: unacknowledged messages, a processing list's "
            "length (read with activeWhileInFlight or includeProcessing)",
            ["backend", "resource"],
            registry=registry,
        )
        self.last_success = Gauge(
            f"{_PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last successful read per resource",
            ["backend", "resource"],
            registry=registry,
        )
        # a leak of tasks (per stream, per outage) or threads (per client) shows here long before
        # it shows in memory; the fault tests compare both with their baseline
        self.asyncio_tasks = Gauge(
            f"{_PREFIX}_asyncio_tasks",
            "Unfinished asyncio tasks of the event loop serving gRPC",
            registry=registry,
        )
        self.threads = Gauge(
            f"{_PREFIX}_threads",
            "Threads of the process (the kernel's count, gRPC's own included)",
            registry=registry,
        )
        self.threads.set_function(_thread_count)
        self.state_store_errors = Counter(
            f"{_PREFIX}_state_store_errors_total",
            "Failed attempts on the shared state store (--state-url); memory answered instead",
            registry=registry,
        )
        self.state_store_up = Gauge(
            f"{_PREFIX}_state_store_up",
            "1 while the shared state store answers, 0 while this replica answers from its "
            "memory alone and before the store's first answer (absent without --state-url)",
            registry=registry,
        )
        self._per_resource = (self.last_value, self.last_success, self.oldest_age, self.in_flight)
        for method in ("StreamIsActive", "StreamMetricSpec"):
            self.open_streams.labels(method)
        # label children bound once: labels() takes a lock and a dict walk on every call
        self._coalescing = {r: self.coalescing.labels(r) for r in ("hit", "miss", "shared")}
        self._rpc: dict[tuple[str, str], Any] = {}

    def track_runtime(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count ``loop``'s unfinished tasks at every scrape (the app calls this on start)."""
        self.asyncio_tasks.set_function(lambda: len(asyncio.all_tasks(loop)))  # retries off-loop

    def rpc(self, method: str, code: str, seconds: float) -> None:
        """One RPC finished with ``code`` (a grpc.StatusCode name)."""
        child = self._rpc.get((method, code))
        if child is None:
            child = self._rpc[(method, code)] = self.rpc_duration.labels(method, code)
        child.observe(seconds)

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        """One broker read finished (engine.Observer)."""
        self.backend_duration.labels(backend, reason).observe(seconds)
        if reason not in ("ok", "cancelled"):  # cancelled: shutdown, not the broker's fault
            self.backend_errors.labels(backend, reason).inc()

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        """A failed read (engine.Observer): counted by ``backend_read`` already."""

    def metadata_refused(self, backend: str, reason: str) -> None:
        """One problem of a metadata error newly told to a ScaledObject (``scaler.refusals``)."""
        self.metadata_errors.labels(backend, reason).inc()

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        """A successful measurement (engine.Observer); keeps at most ``max_resources`` series."""
        key = (backend, resource)
        if key in self._resources:
            self._resources.move_to_end(key)
        else:
            self._resources[key] = None
            if len(self._resources) > self._max_resources:
                old = self._resources.popitem(last=False)[0]
                for gauge in self._per_resource:
                    with contextlib.suppress(KeyError):  # facts a resource never had
                        gauge.remove(*old)
        self.last_value.labels(backend, resource).set(measurement.value)
        self.last_success.labels(backend, resource).set(time.time())
        for fact, gauge in ((OLDEST_AGE, self.oldest_age), (IN_FLIGHT, self.in_flight)):
            value = measurement.facts.get(fact)
            if isinstance(value, int | float):
                gauge.labels(backend, resource).set(value)

    def coalesced(self, result: str) -> None:
        """A measurement lookup was a hit, a miss or shared (cache.Coalescer's on_outcome)."""
        self._coalescing[result].inc()

    def stream_opened(self, method: str) -> None:
        self.open_streams.labels(method).inc()

    def stream_closed(self, method: str) -> None:
        self.open_streams.labels(method).dec()

    def pushed(self, backend: str, kind: str) -> None:
        """A StreamIsActive message was sent (``initial`` or ``activation``)."""
        self.push_events.labels(backend, kind).inc()

    def watcher_count(self, count: int) -> None:
        self.watchers.set(count)

    def without_state_store(self) -> None:
        """No shared store is configured: no ``state_store_up`` series to mislead an alert."""
        self._registry.unregister(self.state_store_up)

    def state_store(self, up: bool, error: bool) -> None:
        """One attempt on the shared state store (``scaler.state.StateObserver``)."""
        self.state_store_up.set(1 if up else 0)
        if error:
            self.state_store_errors.inc()


def _thread_count() -> int:
    """OS threads of this process: Linux lists them under /proc; elsewhere Python's own."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()
