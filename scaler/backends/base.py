"""The Backend protocol: what a broker integration provides, and nothing gRPC- or Prometheus-shaped.

A backend parses its trigger metadata into a :class:`Trigger` (connection identity + resource +
options), opens a :class:`BackendClient` per connection identity, and measures a resource into
a :class:`Measurement` of raw facts. The trigger then turns those facts into the metric value and
activity with its own options, so one broker read serves every ScaledObject on the resource,
whatever their thresholds (DESIGN.md, "Sharing work").

Backends import only this module, ``scaler.metadata``, ``scaler.errors`` and their own client
library.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

_NOT_METRIC_CHARS = re.compile(r"[^a-z0-9-]")


def metric_name(*parts: str) -> str:
    """KEDA's built-in metric name for the same trigger, lower-cased, ``[a-z0-9-]`` only.

    Lower-case because the HPA asks for metrics lower-cased (keda#4954); the same characters as
    KEDA's normalisation so dashboards on ``keda_scaler_metrics_value`` keep working.
    """
    return _NOT_METRIC_CHARS.sub("-", "-".join(parts).lower())


@dataclass(frozen=True, slots=True)
class Measurement:
    """Raw facts read from the broker about one resource, before any trigger option applies.

    :param value: the primary quantity (list length, total lag, queue depth)
    :param facts: anything else seen, by name (key type, ready/unacked counts, rates)
    :param items: per-item facts when the resource has parts (Kafka partitions, the queues a
        RabbitMQ regex matched), so each trigger can apply its own options to them
    """

    value: float
    facts: Mapping[str, float | str] = field(default_factory=dict)
    items: tuple[Mapping[str, float | str], ...] = ()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One trigger's view of a measurement: the metric value KEDA gets and whether it is active."""

    value: float
    active: bool


class Trigger(Protocol):
    """Parsed metadata of one trigger; frozen and hashable, secrets hidden from ``repr``."""

    @property
    def backend(self) -> str:
        """The backend name, as in ``backend: redis``."""

    @property
    def connection(self) -> Hashable:
        """Identity of the broker connection (address, credentials, TLS): the pool key."""

    @property
    def resource(self) -> Hashable:
        """What is read from the broker; with ``connection``, the coalescing key."""

    @property
    def target(self) -> float:
        """Target value per replica (``listLength``, ``lagThreshold``, ``value``)."""

    def metric_name(self) -> str:
        """The metric name reported in GetMetricSpec (KEDA's, normalised)."""

    def resource_label(self) -> str:
        """A short, secret-free label naming the resource, for Prometheus and logs."""

    def evaluate(self, measurement: Measurement) -> Evaluation:
        """Apply this trigger's options to raw facts."""


class BackendClient(Protocol):
    """A live connection to one broker identity, shared by every trigger that names it."""

    async def measure(self, resource: Hashable) -> Measurement:
        """Read the resource; on failure raise a BackendError, never return 0."""

    async def aclose(self) -> None:
        """Release the connection; idempotent."""


BatchResult = tuple[dict[Hashable, "Measurement | BaseException"], int]


@runtime_checkable
class BatchClient(Protocol):
    """A client that reads many resources of its connection at once (watchers use it).

    Optional: the engine falls back to one :meth:`BackendClient.measure` per resource.
    """

    async def measure_many(self, resources: Sequence[Hashable]) -> BatchResult:
        """Every resource's measurement or error, and how many broker requests that cost.

        A failure that concerns one resource (a missing queue) is that resource's entry; a
        failure of the connection itself is raised.
        """


class Backend(Protocol):
    """A broker integration, registered by name in ``scaler.backends.BACKENDS``."""

    @property
    def name(self) -> str:
        """The value of the ``backend`` metadata key that selects this backend."""

    @property
    def connection_keys(self) -> frozenset[str]:
        """Metadata keys that say where and how to connect (address, credentials, TLS).

        A connection profile supplies exactly these; metadata that names a profile may not set
        them (``scaler.profiles``).
        """

    def parse(self, raw: Mapping[str, str]) -> Trigger:
        """Parse metadata; raise one MetadataError listing every problem."""

    def connect(self, connection: Hashable) -> BackendClient:
        """Build a client for a connection identity (lazy: connects on first use)."""


@runtime_checkable
class ClosableBackend(Protocol):
    """A backend that owns something beyond its clients (a thread pool): closed at shutdown,
    after every client."""

    def close(self) -> None:
        """Release it; the backend is not used again."""
