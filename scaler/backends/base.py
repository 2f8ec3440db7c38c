"""What a broker integration provides, and nothing gRPC- or Prometheus-shaped.

A :class:`Backend` reads its declared parameters (``scaler.metadata``) into a :class:`Trigger`:
a connection identity ``C`` (address, credentials, TLS), a resource ``R`` (what is read) and
the trigger's own options. It opens one :class:`Client` per connection identity, which measures
resources into a :class:`Measurement` of raw facts; the trigger then turns those facts into the
metric value and activity with its options, so one broker read serves every ScaledObject on the
resource whatever its thresholds (DESIGN.md, "Sharing work").

A trigger over several items combines their values with :func:`combine` (``operation``).

Optional capabilities are methods with defaults: a client reads a batch of resources one by one
unless it overrides :meth:`Client.measure_many`; a backend keeps no state across reads unless it
overrides :meth:`Backend.remember`; it owns nothing beyond its clients unless it overrides
:meth:`Backend.aclose`.

Backends import only this module, ``scaler.metadata``, ``scaler.values``, ``scaler.errors`` and
their own client library (an import-linter contract enforces it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from scaler.errors import BackendUnavailable
from scaler.metadata import Reading, connection_keys, secret_keys

P = TypeVar("P")
C = TypeVar("C", bound=Hashable)
R = TypeVar("R", bound=Hashable)

# the characters KEDA v2.20's util.NormalizeString replaces (case and `_` are kept)
_METRIC_NAME_MAP: Final = str.maketrans(dict.fromkeys("/.:%()", "-"))


def metric_name(*parts: str) -> str:
    """KEDA's built-in metric name for the same trigger: the parts joined by ``-``, normalised
    exactly as KEDA v2.20's ``NormalizeString`` (only ``/ . : % ( )`` become ``-``), so users'
    dashboards on ``keda_scaler_metrics_value`` keep working after a migration."""
    return "-".join(parts).translate(_METRIC_NAME_MAP)


#: how a trigger over several items (queues a regex matched, keys a glob matched) combines their
#: values: the names of KEDA's RabbitMQ ``operation``
OPERATIONS: Final = ("sum", "max", "avg")


def combine(values: Sequence[float], operation: str) -> float:
    """The values combined by ``operation`` (one of :data:`OPERATIONS`); none at all is 0, as
    KEDA's answer for a regex that matches no queue. ``avg`` is the plain mean."""
    if not values:
        return 0.0
    if operation == "max":
        return max(values)
    if operation == "avg":
        return sum(values) / len(values)
    return sum(values)


#: a fact of age modes: seconds the oldest waiting item has waited, on the broker's clock
OLDEST_AGE: Final = "oldest_age_seconds"
#: a fact of in-flight reads: work being processed now (unacknowledged messages, a processing
#: list's length), which ``activeWhileInFlight`` keeps active
IN_FLIGHT: Final = "in_flight"


@dataclass(frozen=True, slots=True)
class Measurement:
    """Raw facts read from the broker about one resource, before any trigger option applies.

    :param value: the primary quantity (list length, total lag, queue depth)
    :param facts: anything else seen, by name (key type, ready/unacked counts, rates; the
        shared names :data:`OLDEST_AGE` and :data:`IN_FLIGHT` become per-resource gauges)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger(ABC, Generic[C, R]):
    """A parsed trigger: frozen and hashable, secrets hidden from ``repr``.

    :param connection: identity of the broker connection: the pool key
    :param resource: what is read from the broker; with ``connection``, the coalescing key
    """

    connection: C
    resource: R

    @property
    @abstractmethod
    def target(self) -> float:
        """Target value per replica (``listLength``, ``lagThreshold``, ``value``)."""

    @property
    def measures_age(self) -> bool:
        """Whether the metric is an age in seconds, a per-queue quantity that wants the HPA's
        ``metricType: Value`` rather than ``AverageValue`` (``check`` warns otherwise)."""
        return False

    @abstractmethod
    def metric_name(self) -> str:
        """The metric name reported in GetMetricSpec (KEDA's, normalised)."""

    @abstractmethod
    def resource_label(self) -> str:
        """A short, secret-free label naming the resource, for Prometheus and logs."""

    @abstractmethod
    def evaluate(self, measurement: Measurement) -> Evaluation:
        """Apply this trigger's options to raw facts."""


#: per resource, its measurement or the error reading it raised; and the broker requests it cost
Batch = tuple[dict[R, Measurement | BaseException], int]


class Client(ABC, Generic[R]):
    """A live connection to one broker identity, shared by every trigger that names it."""

    @abstractmethod
    async def measure(self, resource: R) -> Measurement:
        """Read the resource; on failure raise a BackendError, never return 0."""

    async def measure_many(self, resources: Sequence[R]) -> Batch[R]:
        """Every resource's measurement or error (watchers' batches), in as few broker requests
        as the backend allows; this default reads them one by one, concurrently.

        A failure that concerns one resource (a missing queue) is that resource's entry; a
        failure of the connection itself is raised.
        """
        outcomes = await asyncio.gather(
            *(self.measure(r) for r in resources), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BackendUnavailable) or (
                isinstance(outcome, BaseException) and not isinstance(outcome, Exception)
            ):
                raise outcome
        return dict(zip(resources, outcomes, strict=True)), len(resources)

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection; idempotent."""


class History(Protocol):
    """Facts that span reads, kept by the engine (``scaler.state``) and keyed by the backend
    with :func:`state_key`; in memory or shared by every replica (``--state-url``)."""

    async def unchanged_for(self, facts: Sequence[tuple[str, Hashable]]) -> list[float]:
        """Seconds each ``(key, value)`` has held its value (0 when new or changed), for a
        whole batch in one store round trip; clocks are the store's business."""

    async def aclose(self) -> None:
        """Close the store's connections, if any."""


def state_key(connection: object, *resource: object) -> str:
    """A stable key of shared state: the sha256 hex digest of a connection identity and a
    resource part, the same in every replica and every run.

    A dataclass connection counts by its fields shown in ``repr`` only: the secrets (password,
    keys) are ``repr=False`` by the rule of every connection, and never reach the digest.
    """

    def plain(value: object) -> object:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return [
                [f.name, plain(getattr(value, f.name))] for f in dataclasses.fields(value) if f.repr
            ]
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    text = json.dumps([plain(connection), plain(list(resource))], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Backend(ABC, Generic[P, C, R]):
    """A broker integration: one entry of the registry (``scaler.backends.BACKENDS``).

    Building one has no side effects: no thread, no connection until first use, and whatever
    it starts, :meth:`aclose` stops.

    :param timeout: socket-level timeout for broker clients (the engine also bounds each call)
    """

    #: the value of the ``backend`` metadata key that selects this backend
    name: ClassVar[str]
    #: its declared parameters: a frozen dataclass of :func:`scaler.metadata.param` fields,
    #: the ``P`` that :meth:`build` receives
    params: ClassVar[type[Any]]
    #: seconds between watcher reads when ``--watch-intervals`` does not name this backend
    #: (None: ``--watch-interval``)
    watch_interval: ClassVar[float | None] = None
    #: loggers of its client library that repeat, as noise, errors the scaler reports itself
    quiet_loggers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def parse(self, raw: Mapping[str, str]) -> Trigger[C, R]:
        """Read metadata into a trigger; raise one MetadataError listing every problem."""
        reading = Reading(raw, self.name)
        trigger = self.build(reading.read(self.params), reading)
        reading.finish()
        if trigger is None:
            raise AssertionError(f"{self.name}: build() gave no trigger and recorded no problem")
        return trigger

    @abstractmethod
    def build(self, params: P, reading: Reading) -> Trigger[C, R] | None:
        """Apply the cross-field rules (KEDA's ``Validate()``) and build the trigger.

        A refused value leaves its field at the default, None when required: the cross-field
        rules must allow for that, and the trigger is built only when :attr:`Reading.failed`
        is false. Record problems with :meth:`Reading.problem`; return None when failed.
        """

    @abstractmethod
    def connect(self, connection: C) -> Client[R]:
        """A client for a connection identity (lazy: it connects on first use)."""

    async def remember(
        self, connection: C, resource: R, measurement: Measurement, history: History
    ) -> Measurement:
        """Add facts that span reads to a fresh measurement (default: none)."""
        return measurement

    async def aclose(self) -> None:
        """Stop whatever the backend owns beyond its clients (closed first, by the pool)."""

    @classmethod
    def connection_keys(cls) -> frozenset[str]:
        """Metadata keys a connection profile supplies (``scaler.profiles``)."""
        return connection_keys(cls.params)

    @classmethod
    def family(cls) -> str:
        """The connection family a profile names: backends that connect alike (the same
        connection keys meaning the same thing, as a Redis topology's list and stream backends)
        share one, so one connection profile serves them all; by default the backend's name."""
        return cls.name

    @classmethod
    def secret_keys(cls) -> frozenset[str]:
        """Metadata keys whose values are never shown."""
        return secret_keys(cls.params)


#: a backend of any parameters, connection and resource types: what the registry holds
AnyBackend = Backend[Any, Any, Any]
