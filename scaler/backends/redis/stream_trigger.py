"""Redis Streams arithmetic: KEDA's ``redis-streams``, ``redis-cluster-streams`` and
``redis-sentinel-streams`` triggers, and the ages of a consumer group's entries.

The parameters are declared in :mod:`.stream_params`, the connection keys' rules are
:mod:`.connection`'s; which measure a trigger takes and the rules between the other keys are
:func:`build`'s. KEDA's ``Validate()`` chooses the measure: with ``consumerGroup`` the group's
lag when ``lagCount`` is given, else its pending entries; without, the stream's length. ``mode``
replaces it with an age.

What is read is the resource, :class:`RedisStream`: one script call returns every fact of a
stream and group (``stream_reply``), and each trigger's measure, thresholds and options apply
afterwards in :meth:`StreamTrigger.evaluate`. The resource says only what changes the read and
its outcome: whether a missing stream or group is an answer (KEDA's, for length and lag) or
``NOT_FOUND`` (pending entries, ages), whether Redis's lag is corrected by counting (lag), and
whether entry ids must be times (ages), and the streams it names when several (a comma list or a
glob: ``keyset``), each read as a stream of its own; ``operation`` combines their measures in
``evaluate``.

Every measure is active iff its value is greater than its threshold (``activationLagCount``, or
``activationValue`` for an age); with ``activeWhileInFlight`` also while the group has pending
entries. Over several streams the measure is each stream's, combined by ``operation`` (``sum``;
``max`` for an age), and the threshold applies to that.
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
from scaler.backends.redis.connection import AnyConnection, EndpointParams, build_connection
from scaler.backends.redis.keyset import KeySet, ManyParams, key_set, operation, per_key
from scaler.backends.redis.stream_params import (
    AGE_MODES,
    LAG,
    OLDEST_PENDING_AGE,
    OLDEST_UNDELIVERED_AGE,
    PENDING_ENTRIES,
    STREAM_LENGTH,
    StreamParams,
)
from scaler.metadata import Reading

#: the keys that mean something only with an age ``mode``
_AGE_KEYS: Final = ("value", "activationValue")
#: KEDA's keys, which mean something only with KEDA's measures (no ``mode``)
_KEDA_KEYS: Final = ("pendingEntriesCount", "streamLength", "lagCount", "activationLagCount")
#: the fact of the age that :data:`~scaler.backends.base.OLDEST_AGE` does not carry
PENDING_AGE: Final = "oldest_pending_age_seconds"

#: what a read of a stream is for, which decides its outcome (see :class:`RedisStream`)
LENGTH_READ: Final = "length"
LAG_READ: Final = "lag"
PENDING_READ: Final = "pending"
AGES_READ: Final = "ages"
#: the read each measure needs: the two ages share one
_READS: Final = {
    STREAM_LENGTH: LENGTH_READ,
    LAG: LAG_READ,
    PENDING_ENTRIES: PENDING_READ,
    OLDEST_UNDELIVERED_AGE: AGES_READ,
    OLDEST_PENDING_AGE: AGES_READ,
}


@dataclass(frozen=True, slots=True)
class RedisStream:
    """The resource read from Redis: one stream (in the connection's database), with its
    consumer group when the measure has one, and what the read is for.

    :param stream: the stream's key
    :param group: the consumer group; None for the stream's length
    :param read: ``length`` or ``lag``: a missing stream or group is an answer, KEDA's; ``lag``
        also counts the entries after the group's position where Redis's lag is null or too
        large; ``pending`` and ``ages``: a missing stream or group is ``NOT_FOUND``; ``ages``:
        an entry id that is no time is ``FAILED_PRECONDITION``
    :param many: the streams when it names several, each read as :meth:`part`; None: ``stream``
        (then the pattern or the comma list, a label never read)
    """

    stream: str
    group: str | None = None
    read: str = LENGTH_READ
    many: KeySet | None = None

    def part(self, stream: str) -> RedisStream:
        """One of its several streams, read as a resource of its own."""
        return RedisStream(stream, self.group, self.read)

    @property
    def needs_group(self) -> bool:
        """Whether a missing stream or group is ``NOT_FOUND`` (KEDA has no answer for it)."""
        return self.read in (PENDING_READ, AGES_READ)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTrigger(Trigger[AnyConnection, RedisStream]):
    """A parsed trigger of the stream backends.

    :param measure: KEDA's (``streamLength``, ``pendingEntriesCount``, ``lagCount``) or an age
        mode
    :param operation: how the measures of several streams combine (``operation``, ``max`` for
        an age)
    """

    params: StreamParams
    measure: str
    operation: str

    @property
    def target(self) -> float:
        params = self.params
        if self.measure in AGE_MODES:
            assert params.value is not None  # required with an age
            return params.value
        if self.measure == LAG:
            assert params.lag_count is not None  # the lag is the measure only when given
            return float(params.lag_count)
        if self.measure == PENDING_ENTRIES:
            return float(params.pending_entries_count)
        return float(params.stream_length)

    @property
    def measures_age(self) -> bool:
        return self.measure in AGE_MODES

    def metric_name(self) -> str:
        # KEDA's name for all three measures (and ours for the ages), of the stream as given: a
        # glob's `*` included (an HPA metric name may hold anything but `/` and `%`)
        return metric_name(f"redis-streams-{self.params.stream}")

    def resource_label(self) -> str:
        group = "" if self.resource.group is None else f"/{self.resource.group}"
        return f"{self.connection.label}/{self.resource.stream}{group}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        streams = [measurement] if self.resource.many is None else per_key(measurement)
        value = combine([self._value(stream) for stream in streams], self.operation)
        if self.measure in AGE_MODES:
            active = value > self.params.activation_value
        else:
            # KEDA: active iff the count > activationLagCount (strict), for all three measures
            active = value > self.params.activation_lag_count
        if self.params.active_while_in_flight and sum(map(self._in_flight, streams)) > 0:
            active = True
        return Evaluation(value, active)

    def _value(self, measurement: Measurement) -> float:
        """The measure of one stream."""
        if self.measure in AGE_MODES:
            fact = PENDING_AGE if self.measure == OLDEST_PENDING_AGE else OLDEST_AGE
            return _fact(measurement, fact)
        return self._count(measurement)

    def _count(self, measurement: Measurement) -> float:
        """KEDA's measure, with KEDA's answers where the stream or group is missing."""
        if self.measure == STREAM_LENGTH:
            return measurement.value  # XLEN: a missing stream is 0
        if self.measure == PENDING_ENTRIES:
            return _fact(measurement, "pending")  # a missing stream or group is NOT_FOUND
        if not _fact(measurement, "stream_exists"):
            return 0.0  # KEDA: XINFO GROUPS on a missing stream is a lag of 0
        if not _fact(measurement, "group_exists"):
            # KEDA: the whole stream, as if the group had just been created
            return measurement.value
        return _fact(measurement, "lag")

    def _in_flight(self, measurement: Measurement) -> float:
        # a group that does not exist (yet) has delivered nothing
        if not _fact(measurement, "group_exists"):
            return 0.0
        return _fact(measurement, IN_FLIGHT)


def _fact(measurement: Measurement, name: str) -> float:
    # The reply sets every fact the resource asks for; a missing one is a bug, never a 0.
    value = measurement.facts[name]
    if not isinstance(value, int | float):
        raise TypeError(f"fact {name} is {value!r}, not a number")
    return float(value)


def _measure(params: StreamParams, reading: Reading) -> str | None:
    """KEDA's ``Validate()`` choice, or the age ``mode``; None when ``mode`` was refused."""
    mode = reading.lookup("mode")
    if mode is not None and mode[1] != params.mode:
        return None  # refused already: which keys belong is unknown
    group = reading.given("consumerGroup")
    if params.mode is None:
        for key in _AGE_KEYS:
            if reading.given(key):
                reading.problem(
                    f"{key} applies only with mode: OldestUndeliveredAge or OldestPendingAge"
                )
        if not group:
            return STREAM_LENGTH
        return LAG if params.lag_count is not None else PENDING_ENTRIES
    for key in _KEDA_KEYS:
        if reading.given(key):
            reading.problem(
                f"{key} applies only without mode (with {params.mode} the metric is an age: its "
                "target is value, its threshold activationValue)"
            )
    if not group:
        reading.problem(
            f"mode: {params.mode} needs consumerGroup (the group whose entries are timed)"
        )
    if not reading.given("value"):
        reading.problem(
            f"missing required parameter value (the target age in seconds, with mode: "
            f"{params.mode})"
        )
    return params.mode


def build(topology: str, params: StreamParams, reading: Reading) -> StreamTrigger | None:
    """The trigger, after KEDA's cross-field rules and ours; None when a problem prevents it."""
    assert isinstance(params, EndpointParams)
    assert isinstance(params, ManyParams)
    connection = build_connection(topology, params, reading)
    keys = key_set("stream", params.stream, params, reading)
    measure = _measure(params, reading)
    if params.active_while_in_flight and not reading.given("consumerGroup"):
        reading.problem(
            "activeWhileInFlight needs consumerGroup (the group whose pending entries are the "
            "work in flight)"
        )
    if connection is None or keys is None or measure is None or reading.failed:
        return None
    group = None if measure == STREAM_LENGTH else params.consumer_group
    resource = RedisStream(keys[0], group, _READS[measure], keys[1])
    return StreamTrigger(
        connection=connection,
        resource=resource,
        params=params,
        measure=measure,
        operation=operation(params, reading, measure in AGE_MODES),
    )
