"""What KEDA sees, kept for the status page: every ScaledObject trigger that called in the last
hour, and every shared resource read for them.

A *trigger* row is one ScaledObject (or ScaledJob) trigger, known by its namespace, name and its
metadata: backend, resource label, metric name, target, the last value and activity it was
given, its RPC counts and the last error (code, time, message). A *resource* row is one shared
read: backend, label, the last measurement and when, its readers and open streams, consecutive
errors, the oldest age and work in flight where measured, and its values over the last 15
minutes (a sparkline). The server reports calls; the engine reports reads (as an
``engine.Observer``).

Nothing here holds raw metadata or a secret: labels are the backends' secret-free resource
labels, messages are the errors' own (which never quote a secret). Memory is bounded: rows
expire an hour after their last use, at most ``max_rows`` of each kind are kept (the least
recently used dropped first), and a snapshot shows at most ``limit`` rows and says how many it
left out.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Evaluation, Measurement
from scaler.errors import ScalerError

#: seconds a row stays after its last use
EXPIRY: Final = 3600.0
#: seconds of values a resource's sparkline shows, and the spacing of its points
HISTORY: Final = 900.0
_SPACING: Final = 10.0


@dataclass
class _Error:
    code: str
    at: float
    message: str


@dataclass
class _Trigger:
    namespace: str
    name: str
    backend: str
    resource: str = ""
    metric_name: str = ""
    target: float | None = None
    value: float | None = None
    active: bool | None = None
    last_rpc: float = 0.0
    last_ok: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    error: _Error | None = None
    streams: int = 0

    @property
    def broken(self) -> bool:
        return self.error is not None and self.error.at >= self.last_ok


@dataclass
class _Resource:
    backend: str
    label: str
    value: float | None = None
    measured_at: float = 0.0
    used_at: float = 0.0
    consecutive_errors: int = 0
    error: _Error | None = None
    oldest_age: float | None = None
    in_flight: float | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)


class StatusBoard:
    """The rows of the status page, fed by the server and the engine.

    :param known_backends: backend names a row may show (another name shows as ``unknown``)
    :param max_rows: rows of each kind kept at most
    :param clock: wall-clock seconds (tests pass their own)
    """

    def __init__(
        self,
        known_backends: frozenset[str] | set[str],
        max_rows: int = 2000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._known = frozenset(known_backends)
        self._max_rows = max_rows
        self._clock = clock
        self._triggers: OrderedDict[tuple[str, str, int], _Trigger] = OrderedDict()
        self._resources: OrderedDict[tuple[str, str], _Resource] = OrderedDict()

    # --- the server's reports -------------------------------------------------------------

    def call(
        self, ident: tuple[str, str, int], backend: str, method: str, error: tuple[str, str] | None
    ) -> None:
        """An RPC (or a stream's end) of a trigger: ``ident`` is (namespace, name, a stable
        hash of its metadata); ``error`` is (status code, message) when it failed."""
        now = self._clock()
        row = self._trigger(ident, backend)
        row.last_rpc = now
        row.calls[method] += 1
        if error is None:
            row.last_ok = now
        else:
            row.error = _Error(error[0], now, error[1])

    def parsed(
        self, ident: tuple[str, str, int], backend: str, resource: str, metric: str, target: float
    ) -> None:
        """What a trigger's metadata says: its resource, metric name and target."""
        row = self._trigger(ident, backend)
        row.resource, row.metric_name, row.target = resource, metric, target
        self._resource(backend, resource).used_at = self._clock()

    def evaluated(self, ident: tuple[str, str, int], backend: str, evaluation: Evaluation) -> None:
        """The value and activity a trigger was given."""
        row = self._trigger(ident, backend)
        row.value, row.active = evaluation.value, evaluation.active

    def stream(self, ident: tuple[str, str, int], backend: str, delta: int) -> None:
        """A stream of this trigger opened (+1) or ended (-1)."""
        row = self._trigger(ident, backend)
        row.streams = max(0, row.streams + delta)

    # --- the engine's reports (engine.Observer) -------------------------------------------

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        """Not shown per read: the metrics count them."""

    def coalesced(self, result: str) -> None:
        """Not shown: the metrics count them."""

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        now = self._clock()
        row = self._resource(backend, resource)
        row.value, row.measured_at, row.used_at = measurement.value, now, now
        row.consecutive_errors, row.error = 0, None
        row.oldest_age = _fact(measurement, OLDEST_AGE)
        row.in_flight = _fact(measurement, IN_FLIGHT)
        if not row.history or now - row.history[-1][0] >= _SPACING:
            row.history.append((now, measurement.value))
        while row.history and now - row.history[0][0] > HISTORY:
            row.history.popleft()

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        now = self._clock()
        row = self._resource(backend, resource)
        row.consecutive_errors += 1
        row.used_at = now
        row.error = _Error(type(error).__name__, now, str(error))

    # --- the page's view ------------------------------------------------------------------

    def snapshot(self, limit: int = 200) -> dict[str, Any]:
        """The rows to show, broken first, each kind capped at ``limit``; JSON-ready."""
        now = self._clock()
        self._expire(now)
        triggers = sorted(
            self._triggers.values(), key=lambda t: (not t.broken, -t.last_rpc, t.namespace)
        )
        readers: Counter[tuple[str, str]] = Counter(
            (t.backend, t.resource) for t in self._triggers.values() if t.resource
        )
        streams: Counter[tuple[str, str]] = Counter()
        for t in self._triggers.values():
            streams[(t.backend, t.resource)] += t.streams
        resources = sorted(
            self._resources.values(),
            key=lambda r: (r.consecutive_errors == 0, r.backend, r.label),
        )
        return {
            "generated_at": now,
            "triggers": [_trigger_view(t, now) for t in triggers[:limit]],
            "triggers_left_out": max(0, len(triggers) - limit),
            "resources": [
                _resource_view(r, now, readers[(r.backend, r.label)], streams[(r.backend, r.label)])
                for r in resources[:limit]
            ],
            "resources_left_out": max(0, len(resources) - limit),
        }

    def _trigger(self, ident: tuple[str, str, int], backend: str) -> _Trigger:
        row = self._triggers.get(ident)
        if row is None:
            shown = backend if backend in self._known else "unknown"
            row = self._triggers[ident] = _Trigger(ident[0], ident[1], shown)
            if len(self._triggers) > self._max_rows:
                self._triggers.popitem(last=False)
        else:
            self._triggers.move_to_end(ident)
        return row

    def _resource(self, backend: str, label: str) -> _Resource:
        key = (backend, label)
        row = self._resources.get(key)
        if row is None:
            row = self._resources[key] = _Resource(backend, label)
            if len(self._resources) > self._max_rows:
                self._resources.popitem(last=False)
        else:
            self._resources.move_to_end(key)
        return row

    def _expire(self, now: float) -> None:
        for ident in [k for k, t in self._triggers.items() if now - t.last_rpc > EXPIRY]:
            del self._triggers[ident]
        for key in [k for k, r in self._resources.items() if now - r.used_at > EXPIRY]:
            del self._resources[key]


def _fact(measurement: Measurement, name: str) -> float | None:
    value = measurement.facts.get(name)
    return float(value) if isinstance(value, int | float) else None


def _error_view(error: _Error | None, now: float) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "code": error.code,
        "at": error.at,
        "age_seconds": now - error.at,
        "message": error.message,
    }


def _trigger_view(t: _Trigger, now: float) -> dict[str, Any]:
    return {
        "namespace": t.namespace,
        "name": t.name,
        "backend": t.backend,
        "resource": t.resource,
        "metric_name": t.metric_name,
        "value": t.value,
        "target": t.target,
        "active": t.active,
        "last_rpc": t.last_rpc,
        "last_rpc_age_seconds": now - t.last_rpc,
        "calls": dict(sorted(t.calls.items())),
        "open_streams": t.streams,
        "broken": t.broken,
        "error": _error_view(t.error, now),
    }


def _resource_view(r: _Resource, now: float, readers: int, streams: int) -> dict[str, Any]:
    return {
        "backend": r.backend,
        "resource": r.label,
        "value": r.value,
        "measured_age_seconds": now - r.measured_at if r.measured_at else None,
        "readers": readers,
        "open_streams": streams,
        "consecutive_errors": r.consecutive_errors,
        "error": _error_view(r.error, now),
        "oldest_age_seconds": r.oldest_age,
        "in_flight": r.in_flight,
        "history": [[round(at - now, 1), value] for at, value in r.history],
    }
