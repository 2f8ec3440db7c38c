"""backend: kafka ``mode: LagSeconds``: its keys, and its arithmetic on hand-made ages (the real
broker proves the reads, tests/integration/test_kafka_ages.py)."""

from __future__ import annotations

import grpc
import pytest

from scaler.backends.base import Measurement
from scaler.backends.kafka import ConsumerLag, KafkaBackend, KafkaTrigger
from scaler.errors import MetadataError
from tests.conftest import ref

BASE = {
    "backend": "kafka",
    "bootstrapServers": "k1:9092",
    "consumerGroup": "orders",
    "topic": "orders",
}
AGES = {**BASE, "mode": "LagSeconds", "value": "30"}


def parse(metadata: dict[str, str]) -> KafkaTrigger:
    trigger = KafkaBackend(timeout=1.0).parse(metadata)
    assert isinstance(trigger, KafkaTrigger)
    return trigger


def ages(**metadata: str) -> KafkaTrigger:
    return parse({**AGES, **metadata})


def problems(metadata: dict[str, str]) -> str:
    with pytest.raises(MetadataError) as err:
        parse(metadata)
    return str(err.value)


def partitions(
    *rows: tuple[int, int, float], log_start: int = -1, unchanged_for: float = 0.0
) -> Measurement:
    """(committed, log_end, age_seconds) per partition, numbered from 0, as an age read gives."""
    items: tuple[dict[str, float | str], ...] = tuple(
        {
            "topic": "orders",
            "partition": index,
            "committed": committed,
            "log_end": end,
            "log_start": log_start,
            "age_seconds": age,
            "unchanged_for": unchanged_for,
        }
        for index, (committed, end, age) in enumerate(rows)
    )
    return Measurement(0.0, {}, items)


# -- the keys ---------------------------------------------------------------------------------


def test_lag_stays_the_default_with_kedas_target() -> None:
    t = parse(BASE)
    assert (t.params.mode, t.target, t.measures_age) == ("Lag", 10.0, False)
    assert t.resource == ConsumerLag("orders", "orders")
    assert parse({**BASE, "mode": "Lag", "lagThreshold": "7"}).target == 7.0


def test_lag_seconds_targets_value_in_seconds_and_is_an_age() -> None:
    t = ages(value="12.5")
    assert (t.target, t.measures_age, t.params.activation_value) == (12.5, True, 0.0)
    assert t.resource == ConsumerLag("orders", "orders", with_ages=True)
    assert t.metric_name() == "kafka-orders"  # KEDA's name for the topic, whatever the mode


def test_one_read_per_group_and_mode_whatever_the_thresholds() -> None:
    # what is read: ages are part of it, targets and activation are not
    assert ages(value="5").resource == ages(value="50", activationValue="9").resource
    assert ages().resource != parse(BASE).resource
    assert ages(offsetResetPolicy="earliest").resource == ConsumerLag(
        "orders", "orders", with_log_start=True, with_ages=True
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"mode": "LagSeconds"}, "missing required parameter value (mode is LagSeconds)"),
        (
            {"mode": "lagseconds", "value": "3"},
            "mode: 'lagseconds' must be one of [Lag, LagSeconds]",
        ),
        ({"value": "30"}, "value needs mode: LagSeconds (the mode is Lag"),
        ({"mode": "Lag", "activationValue": "2"}, "activationValue needs mode: LagSeconds"),
        ({**AGES, "lagThreshold": "5"}, "lagThreshold is used with mode: Lag only"),
        ({**AGES, "activationLagThreshold": "0"}, "activationLagThreshold is used with mode: Lag"),
        ({**AGES, "value": "0"}, "value: '0' must be greater than 0"),
        ({**AGES, "value": "-3"}, "value: '-3' must be greater than 0"),
        ({**AGES, "activationValue": "-1"}, "activationValue: '-1' must be 0 or greater"),
        (
            {**AGES, "limitToPartitionsWithLag": "true"},
            "limitToPartitionsWithLag caps a lag in lagThreshold units and cannot apply to mode "
            "LagSeconds",
        ),
        (
            {**AGES, "ensureEvenDistributionOfPartitions": "true"},
            "ensureEvenDistributionOfPartitions caps a lag in lagThreshold units",
        ),
    ],
)
def test_each_mode_takes_its_own_keys(extra: dict[str, str], expected: str) -> None:
    assert expected in problems({**BASE, **extra})


@pytest.mark.parametrize("mode", ["Lag", "LagSeconds"])
def test_active_while_in_flight_is_refused_saying_why(mode: str) -> None:
    metadata = {**AGES, "mode": mode} if mode == "LagSeconds" else BASE
    message = problems({**metadata, "activeWhileInFlight": "true"})
    assert "activeWhileInFlight: Kafka has no in-flight count apart from the lag" in message
    assert "stays unconsumed until its offset is committed" in message
    assert (
        parse({**metadata, "activeWhileInFlight": "false"}).params.active_while_in_flight is False
    )


async def test_a_refused_key_is_invalid_argument_over_grpc(serve) -> None:
    running = await serve()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetricSpec(ref({**AGES, "activeWhileInFlight": "true"}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "activeWhileInFlight" in (err.value.details() or "")
    spec = (await running.stub.GetMetricSpec(ref(AGES))).metricSpecs[0]
    assert (spec.metricName, spec.targetSizeFloat) == ("kafka-orders", 30.0)


# -- the arithmetic ---------------------------------------------------------------------------


def test_the_value_is_the_oldest_age_and_a_partition_without_lag_counts_zero() -> None:
    # partition 2 has no lag: its (stale) age must not count
    e = ages().evaluate(partitions((5, 9, 40.0), (3, 4, 95.5), (7, 7, 500.0)))
    assert e.value == 95.5
    assert e.active


def test_activity_is_the_age_above_activation_value() -> None:
    t = ages(activationValue="10")
    assert not t.evaluate(partitions((0, 1, 10.0))).active
    assert t.evaluate(partitions((0, 1, 10.5))).active
    assert not ages().evaluate(partitions((4, 4, 0.0))).active


def test_ages_are_not_capped_at_the_partition_count() -> None:
    # one partition, an age of 50 targets: Lag would cap the value at one replica's worth; an
    # age under metricType Value scales the replica count by age / value, which no cap bounds
    assert ages(value="2").evaluate(partitions((0, 3, 100.0))).value == 100.0


def test_partition_limitation_applies_to_ages() -> None:
    t = ages(partitionLimitation="0,2")
    assert t.evaluate(partitions((0, 2, 20.0), (0, 2, 90.0), (0, 2, 30.0))).value == 30.0
    with pytest.raises(MetadataError, match="no partition"):
        ages(partitionLimitation="7").evaluate(partitions((0, 2, 20.0)))


@pytest.mark.parametrize(
    ("policy", "zero", "expected"),
    [
        ("latest", "false", 0.0),
        ("latest", "true", 0.0),
        ("earliest", "false", 64.0),
        ("earliest", "true", 0.0),
    ],
)
def test_uncommitted_partitions_follow_the_reset_policy(
    policy: str, zero: str, expected: float
) -> None:
    # earliest: the oldest record is the one at the log start; latest: a new consumer starts at
    # the log end, so nothing waits for it
    t = ages(offsetResetPolicy=policy, scaleToZeroOnInvalidOffset=zero)
    e = t.evaluate(partitions((-1, 100, 64.0), log_start=60))
    assert e.value == expected
    assert e.active is (expected > 0)


def test_persistent_lag_leaves_the_metric_but_keeps_the_trigger_active() -> None:
    t = ages(excludePersistentLag="true", persistentLagSeconds="30")
    stuck = partitions((4, 9, 300.0), (1, 2, 12.0), unchanged_for=31.0)
    assert t.evaluate(stuck).value == 0.0
    assert t.evaluate(stuck).active
    moving = partitions((4, 9, 300.0), unchanged_for=29.0)
    assert t.evaluate(moving).value == 300.0


def test_an_age_missing_from_a_partition_with_lag_is_never_zero() -> None:
    # the client fails a read that misses an age; a measurement without one is a bug, not 0
    read = Measurement(
        2.0,
        {},
        ({"topic": "orders", "partition": 0, "committed": 1, "log_end": 3, "log_start": -1},),
    )
    with pytest.raises(KeyError, match="age_seconds"):
        ages().evaluate(read)
