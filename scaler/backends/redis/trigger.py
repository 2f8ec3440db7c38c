"""Redis list arithmetic: KEDA's ``redis``, ``redis-cluster`` and ``redis-sentinel`` triggers, and
the age of a list.

The parameters are declared in :mod:`.params`, the connection keys' rules are
:mod:`.connection`'s; the rules between the other keys (those of each mode, the processing
list's options) are :func:`build`'s. What changes the read (the age spec, the processing list)
is in the resource, :class:`RedisList`, with the keys it names when several (a comma list or a
glob: ``keyset``); thresholds and ``operation`` stay in the trigger, so triggers that differ
only in them share one read.

``ListLength`` is active iff the length is greater than ``activationListLength``; ``OldestAge``
iff the age is greater than ``activationValue``; with ``activeWhileInFlight`` also while the
processing list is not empty. Over several keys the value is each key's, combined by
``operation`` (``sum``; ``max`` for an age), and the threshold applies to that.
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
    combine,
    metric_name,
)
from scaler.backends.redis.connection import (
    AnyConnection,
    EndpointParams,
    RedisConnection,
    build_connection,
)
from scaler.backends.redis.keyset import KeySet, ManyParams, key_set, operation, per_key
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

    :param key: the key; with ``many``, the pattern or the comma list (a label, never read)
    :param many: the keys when it names several, each read as :meth:`part`; None: ``key``
    """

    key: str
    age: AgeSpec | None = None
    processing: str | None = None
    many: KeySet | None = None

    def part(self, key: str) -> RedisList:
        """One of its several keys, read as a resource of its own."""
        return RedisList(key, self.age, self.processing)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisTrigger(Trigger[AnyConnection, RedisList]):
    """A parsed trigger of the list backends: ``redis``, ``redis-cluster``, ``redis-sentinel``.

    :param operation: how the values of several keys combine (``operation``, ``max`` for an age)
    """

    params: ListParams
    operation: str

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
        # KEDA's form for the listName as given, a glob's `*` included (an HPA metric name may
        # hold anything but `/` and `%`, which the normalisation replaces)
        return metric_name("redis", self.params.list_name)

    def resource_label(self) -> str:
        return f"{self.connection.label}/{self.resource.key}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        if self.resource.many is None:
            value = self._value(measurement)
        else:
            values = [self._value(key) for key in per_key(measurement)]
            value = combine(values, self.operation)
        if self.resource.age is not None:
            active = value > self.params.activation_value
        else:
            # KEDA: active iff length > activationListLength (strict)
            active = value > self.params.activation_list_length
        if self.params.active_while_in_flight and _fact(measurement, IN_FLIGHT) > 0:
            active = True
        return Evaluation(value, active)

    def _value(self, measurement: Measurement) -> float:
        """The age or the length of one key."""
        if self.resource.age is not None:
            return _fact(measurement, OLDEST_AGE)
        if self.params.include_processing:
            return measurement.value + _fact(measurement, IN_FLIGHT)
        return measurement.value


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


def _processing(params: ListParams, reading: Reading, many: bool) -> str | None:
    """The processing list, when one is named; its options (when true) need it."""
    name = params.processing_list_name
    if many and reading.given("processingListName"):
        reading.problem(
            "processingListName names the processing list of one listName: it cannot be combined "
            "with several keys (a comma list or useGlob)"
        )
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
    assert isinstance(params, ManyParams)
    connection = build_connection(topology, params, reading)
    keys = key_set("listName", params.list_name, params, reading)
    many = None if keys is None else keys[1]
    age = _age(params, reading)
    processing = _processing(params, reading, many is not None)
    if connection is None or keys is None or reading.failed:
        return None
    resource = RedisList(keys[0], age, processing, many)
    combined = operation(params, reading, params.mode == OLDEST_AGE_MODE)
    return RedisTrigger(connection=connection, resource=resource, params=params, operation=combined)
