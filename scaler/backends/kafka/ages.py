"""``mode: LagSeconds``: its rules between keys, and the age arithmetic on what the client read.

The client measures, for each partition with lag, the age of its oldest unconsumed record
(``age_seconds`` in the partition's item, :mod:`scaler.backends.kafka.records`). A trigger's
options then apply as they do to lag: ``partitionLimitation`` (by the caller), the reset policy
and ``scaleToZeroOnInvalidOffset`` for partitions without a commit, ``excludePersistentLag``. The
metric is the oldest age over the partitions left, not a sum: an age is a per-queue quantity.

The replica caps of ``Lag`` (``allowIdleConsumers``, ``limitToPartitionsWithLag``,
``ensureEvenDistributionOfPartitions``) do not apply: they bound ``lag / lagThreshold``, the
replica count under ``metricType: AverageValue``, while an age under ``metricType: Value``
multiplies the current replica count by ``age / value``, which no bound on the value can cap
(``maxReplicaCount`` does). The two that would change the metric are refused with this mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scaler.backends.base import Evaluation
from scaler.backends.kafka.params import LAG_SECONDS, KafkaParams
from scaler.metadata import Reading

#: the keys of each mode, refused with the other (KEDA's names for Lag, RabbitMQ's for ages)
_LAG_KEYS = ("lagThreshold", "activationLagThreshold")
_AGE_KEYS = ("value", "activationValue")


def check_mode(p: KafkaParams, reading: Reading) -> None:
    """The keys that go with each mode, and the options that make no sense with an age."""
    if p.active_while_in_flight:
        reading.problem(
            "activeWhileInFlight: Kafka has no in-flight count apart from the lag: a record "
            "being processed stays unconsumed until its offset is committed, so the lag (and its "
            "age) already keeps the trigger active"
        )
    if p.mode != LAG_SECONDS:
        for key in _AGE_KEYS:
            if reading.given(key):
                reading.problem(
                    f"{key} needs mode: LagSeconds (the mode is {p.mode}, whose keys are "
                    "lagThreshold and activationLagThreshold)"
                )
        return
    for key in _LAG_KEYS:
        if reading.given(key):
            reading.problem(
                f"{key} is used with mode: Lag only; mode LagSeconds takes value and "
                "activationValue, in seconds"
            )
    if not reading.given("value"):
        reading.problem("missing required parameter value (mode is LagSeconds)")
    for key, on in (
        ("limitToPartitionsWithLag", p.limit_to_partitions_with_lag),
        ("ensureEvenDistributionOfPartitions", p.ensure_even_distribution),
    ):
        if on:
            reading.problem(
                f"{key} caps a lag in lagThreshold units and cannot apply to mode LagSeconds: "
                "an age is not divided among replicas (set maxReplicaCount instead)"
            )


def evaluate(p: KafkaParams, partitions: Sequence[Mapping[str, float | str]]) -> Evaluation:
    """The oldest age over ``partitions`` (persistent lag excluded unless for activity)."""
    metric = 0.0
    with_persistent = 0.0
    for item in partitions:
        age, counted = _partition_age(p, item)
        metric = max(metric, counted)
        with_persistent = max(with_persistent, age)
    return Evaluation(metric, with_persistent > p.activation_value)


def _partition_age(p: KafkaParams, item: Mapping[str, float | str]) -> tuple[float, float]:
    """(age, age the metric counts) of one partition."""
    committed = float(item["committed"])
    if committed < 0:
        # latest: a new consumer starts at the log end, so nothing waits for it (the client
        # read no record); earliest: the oldest record is the one at the log start
        if p.scale_to_zero_on_invalid_offset or p.offset_reset_policy == "latest":
            return 0.0, 0.0
        age = float(item["age_seconds"])
        return age, age
    if float(item["log_end"]) <= committed:
        return 0.0, 0.0
    # the client gives every partition with lag an age, or fails the read naming it: a missing
    # key here is a bug, never 0
    age = float(item["age_seconds"])
    persistent = (
        p.exclude_persistent_lag and float(item["unchanged_for"]) >= p.persistent_lag_seconds
    )
    return age, (0.0 if persistent else age)
