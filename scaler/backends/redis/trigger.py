"""Redis list arithmetic: KEDA's ``redis``, ``redis-cluster`` and ``redis-sentinel`` triggers, and
the age of a list.

The parameters are declared in :mod:`.params`, the connection keys' rules are
:mod:`.connection`'s; the rules between the other keys (those of each mode, the processing
list's options) are :func:`build`'s. What changes the read (the age spec, the processing list)
is in the resource, :class:`RedisList`; thresholds stay in the trigger, so triggers that differ
only in thresholds share one read.

``ListLength`` is active iff the length is greater than ``activationListLength``; ``OldestAge``
iff the age is greater than ``activationValue``; with ``activeWhileInFlight`` also while the
processing list is not empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from scaler.backends.base import (
    IN_FLIGHT,
    OLDEST_AGE,
    Evaluation,
    Measurement,
    Trigger,
    metric_name,
)
from scaler.backends.redis.connection import (
    AnyConnection,
    EndpointParams,
    RedisConnection,
    build_connection,
)
from scaler.backends.redis.params import NAME, OLDEST_AGE_MODE, ListParams
from scaler.metadata import Reading

#: the keys that mean something only with ``mode: OldestAge``
_AGE_KEYS: Final = ("value", "activationValue", "oldestEnd", "timestampField", "timestampHashKey")
#: the keys that mean something only with ``mode: ListLength``
_LENGTH_KEYS: Final = ("listLength", "activationListLength")

__all__ = ["NAME", "AgeSpec", "RedisConnection", "RedisList", "RedisTrigger", "build"]


@dataclass(frozen=True, slots=True)
class AgeSpec:
    """How the age of a list is read: which end, and where the enqueue time is.

    :param end: ``right`` or ``left``, the end holding the oldest element
    :param field: the JSON element's field (dots go into nested objects), or the hash's field
    :param hash_key: the hash named by the element in place of ``{}``; None: the element is JSON
    """

    end: str
    field: str
    hash_key: str | None = None


@dataclass(frozen=True, slots=True)
class RedisList:
    """The resource read from Redis: one key in one database (the database is in the connection),
    with what else the read needs: the age of its oldest element, the processing list's length.
    """

    key: str
    age: AgeSpec | None = None
    processing: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisTrigger(Trigger[AnyConnection, RedisList]):
    """A parsed trigger of the list backends: ``redis``, ``redis-cluster``, ``redis-sentinel``."""

    params: ListParams

    @property
    def target(self) -> float:
        if self.resource.age is not None:
            assert self.params.value is not None  # required with OldestAge
            return self.params.value
        return float(self.params.list_length)

    @property
    def measures_age(self) -> bool:
        return self.resource.age is not None

    def metric_name(self) -> str:
        return metric_name("redis", self.resource.key)

    def resource_label(self) -> str:
        return f"{self.connection.label}/{self.resource.key}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        if self.resource.age is not None:
            value = _fact(measurement, OLDEST_AGE)
            active = value > self.params.activation_value
        else:
            value = measurement.value
            if self.params.include_processing:
                value += _fact(measurement, IN_FLIGHT)
            # KEDA: active iff length > activationListLength (strict)
            active = value > self.params.activation_list_length
        if self.params.active_while_in_flight and _fact(measurement, IN_FLIGHT) > 0:
            active = True
        return Evaluation(value, active)


def _fact(measurement: Measurement, name: str) -> float:
    # The client sets every fact the resource asks for; a missing one is a bug, never a 0.
    value = measurement.facts[name]
    if not isinstance(value, int | float):
        raise TypeError(f"fact {name} is {value!r}, not a number")
    return float(value)


def _age(params: ListParams, reading: Reading) -> AgeSpec | None:
    """The age spec of ``mode: OldestAge``; None for ``ListLength`` or after a problem."""
    mode = reading.lookup("mode")
    if mode is not None and mode[1] != params.mode:
        return None  # refused already: which keys belong is unknown
    if params.mode != OLDEST_AGE_MODE:
        for key in _AGE_KEYS:
            if reading.given(key):
                reading.problem(f"{key} applies only with mode: OldestAge")
        return None
    if params.include_processing:
        reading.problem("includeProcessing applies only with mode: ListLength (an age is no count)")
    for key in _LENGTH_KEYS:
        if reading.given(key):
            reading.problem(
                f"{key} applies only with mode: ListLength (with OldestAge the metric is an age: "
                "its target is value, its threshold activationValue)"
            )
    if not reading.given("value"):
        reading.problem(
            "missing required parameter value (the target age in seconds, with mode: OldestAge)"
        )
    if not reading.given("timestampField"):
        reading.problem(
            "missing required parameter timestampField (where the enqueue time is, with mode: "
            "OldestAge)"
        )
    if params.timestamp_field is None:
        return None
    return AgeSpec(params.oldest_end, params.timestamp_field, params.timestamp_hash_key)


def _processing(params: ListParams, reading: Reading) -> str | None:
    """The processing list, when one is named; its options (when true) need it."""
    name = params.processing_list_name
    if not reading.given("processingListName"):
        options = {
            "includeProcessing": params.include_processing,
            "activeWhileInFlight": params.active_while_in_flight,
        }
        for key in (key for key, on in options.items() if on):
            reading.problem(
                f"{key} needs processingListName (the list of elements being processed)"
            )
    elif name is not None and name == params.list_name:
        reading.problem("processingListName must differ from listName")
    return name


def build(topology: str, params: ListParams, reading: Reading) -> RedisTrigger | None:
    """The trigger, after KEDA's cross-field rules and the modes'; None when a problem prevents
    it."""
    assert isinstance(params, EndpointParams)
    connection = build_connection(topology, params, reading)
    resource = RedisList(params.list_name, _age(params, reading), _processing(params, reading))
    if connection is None or reading.failed:
        return None
    return RedisTrigger(connection=connection, resource=resource, params=params)
