"""Kafka metadata parsing and lag arithmetic on hand-made offsets (the real broker proves the reads)."""

from __future__ import annotations

import pytest

from scaler.backends.base import Evaluation, Measurement
from scaler.backends.kafka import ConsumerLag, KafkaBackend, KafkaConnection, KafkaTrigger
from scaler.errors import MetadataError
from scaler.state import MemoryHistory

BASE = {
    "backend": "kafka",
    "bootstrapServers": "k1:9092,k2:9092",
    "consumerGroup": "orders",
    "topic": "orders",
}


def offsets(*partitions: tuple[int, int, int], log_start: int = -1) -> Measurement:
    """(committed, log_end, partition) per partition, as the client reads them."""
    items: list[dict[str, float | str]] = []
    for committed, end, index in partitions:
        items.append(
            {
                "topic": "orders",
                "partition": index,
                "committed": committed,
                "log_end": end,
                "log_start": log_start,
            }
        )
    return Measurement(0.0, {}, tuple(items))


def parse_metadata(metadata: dict[str, str]) -> KafkaTrigger:
    parsed = KafkaBackend(timeout=1.0).parse(metadata)
    assert isinstance(parsed, KafkaTrigger)
    return parsed


def trigger(**metadata: str) -> KafkaTrigger:
    return parse_metadata({**BASE, **metadata})


def test_defaults_are_kedas() -> None:
    t = parse_metadata(BASE)
    p = t.params
    assert (t.connection, t.resource, t.target, t.partitions) == (
        KafkaConnection(("k1:9092", "k2:9092")),
        ConsumerLag("orders", "orders"),
        10.0,
        None,
    )
    assert (p.activation_lag_threshold, p.offset_reset_policy, p.persistent_lag_seconds) == (
        0,
        "latest",
        30.0,
    )
    assert not any(
        (
            p.allow_idle_consumers,
            p.exclude_persistent_lag,
            p.scale_to_zero_on_invalid_offset,
            p.limit_to_partitions_with_lag,
            p.ensure_even_distribution,
        )
    )
    assert (p.version, p.full_metadata) == ("1.0.0", True)
    assert t.metric_name() == "kafka-orders"
    assert (
        parse_metadata({k: v for k, v in BASE.items() if k != "topic"}).metric_name()
        == "kafka-orders-topics"
    )


def test_every_problem_at_once_and_no_secret() -> None:
    bad = {
        "backend": "kafka",
        "lagThreshold": "0",
        "activationLagThreshold": "-1",
        "offsetResetPolicy": "newest",
        "sasl": "scram_sha512",
        "password": "kafka-secret-pw",
        "limitToPartitionsWithLag": "true",
        "allowIdleConsumers": "true",
        "partitionLimitation": "1,x",
        "cert": "PEM",
    }
    with pytest.raises(MetadataError) as err:
        parse_metadata(bad)
    message = str(err.value)
    for expected in (
        "missing required parameter bootstrapServers",
        "missing required parameter consumerGroup",
        "lagThreshold: '0' must be greater than 0",
        "activationLagThreshold: '-1' must be 0 or greater",
        "offsetResetPolicy: 'newest' must be one of [latest, earliest]",
        "username is required with sasl scram_sha512",
        "limitToPartitionsWithLag and allowIdleConsumers cannot both be true",
        "limitToPartitionsWithLag requires topic",
        "partitionLimitation: 'x'",
        "cert and key must be given together",
    ):
        assert expected in message
    assert "kafka-secret-pw" not in message
    assert "PEM" not in message


def test_secrets_hidden_from_repr() -> None:
    t = trigger(
        sasl="plaintext",
        username="u",
        password="pw-123",
        tls="enable",
        key="KEY-PEM",
        cert="CERT-PEM",
    )
    for secret in ("pw-123", "KEY-PEM", "CERT-PEM"):
        assert secret not in repr(t)


def test_gssapi_is_refused_clearly() -> None:
    with pytest.raises(MetadataError, match="gssapi"):
        trigger(sasl="gssapi", username="u", password="p")


def test_lag_is_log_end_minus_committed_clamped_at_zero() -> None:
    e = trigger(lagThreshold="5").evaluate(offsets((10, 25, 0), (30, 30, 1), (50, 40, 2)))
    assert e.value == 15  # 15 + 0 + 0 (never negative)
    assert e.active


@pytest.mark.parametrize(
    ("policy", "zero", "expected"),
    [
        ("latest", "false", 1 + 1),
        ("latest", "true", 0),
        ("earliest", "false", 40 + 40),
        ("earliest", "true", 0),
    ],
)
def test_uncommitted_partitions_follow_the_reset_policy(
    policy: str, zero: str, expected: float
) -> None:
    t = trigger(
        offsetResetPolicy=policy, scaleToZeroOnInvalidOffset=zero, allowIdleConsumers="true"
    )
    # log-end 100, log-start 60 after retention: earliest counts 40 per partition, not 100
    e = t.evaluate(offsets((-1, 100, 0), (-1, 100, 1), log_start=60))
    assert e.value == expected
    assert e.active is (expected > 0)


def test_partition_cap_without_kedas_off_by_one() -> None:
    # 2 partitions, threshold 10, lag 25: KEDA's int(25/10)=2 is not > 2, so the HPA's ceil gives 3
    e = trigger(lagThreshold="10").evaluate(offsets((0, 13, 0), (0, 12, 1)))
    assert e.value == 20  # capped to 2 replicas' worth
    assert e.active


def test_allow_idle_consumers_lifts_the_cap() -> None:
    e = trigger(lagThreshold="10", allowIdleConsumers="true").evaluate(
        offsets((0, 13, 0), (0, 12, 1))
    )
    assert e.value == 25


def test_limit_to_partitions_with_lag() -> None:
    t = trigger(lagThreshold="10", limitToPartitionsWithLag="true")
    e = t.evaluate(offsets((0, 100, 0), (5, 5, 1), (7, 7, 2), (1, 1, 3)))
    assert e.value == 10  # one partition has lag: at most one replica


def test_partition_limitation_filters_partitions() -> None:
    t = trigger(partitionLimitation="0,2-3", allowIdleConsumers="true")
    e = t.evaluate(offsets((0, 1, 0), (0, 100, 1), (0, 2, 2), (0, 3, 3)))
    assert e.value == 6
    with pytest.raises(MetadataError, match="no partition"):
        trigger(partitionLimitation="7-9").evaluate(offsets((0, 1, 0)))


def test_partition_limitation_is_ranges_not_a_set_of_every_number() -> None:
    # a hostile range costs two numbers, not two billion (and no time to parse)
    every = trigger(partitionLimitation="0-2147483647", allowIdleConsumers="true")
    assert every.partitions is not None
    assert every.partitions.ranges == ((0, 2147483647),)
    assert every.evaluate(offsets((0, 4, 0), (0, 6, 9))).value == 10
    merged = trigger(partitionLimitation="5, 1-3, 4, 9-9", allowIdleConsumers="true")
    assert merged.partitions is not None
    assert merged.partitions.ranges == ((1, 5), (9, 9))
    assert [n for n in range(11) if n in merged.partitions] == [1, 2, 3, 4, 5, 9]


@pytest.mark.parametrize(
    "limitation", ["0-2147483648", "99999999999", "9" * 5000, "0-" + "9" * 5000]
)
def test_partition_limitation_beyond_int32_is_refused(limitation: str) -> None:
    with pytest.raises(MetadataError, match="partitionLimitation"):
        trigger(partitionLimitation=limitation)


@pytest.mark.parametrize(
    ("lag", "expected"), [(0, 10), (5, 10), (11, 20), (21, 30), (31, 60), (61, 60)]
)
def test_ensure_even_distribution_rounds_up_to_a_divisor(lag: int, expected: float) -> None:
    # 6 partitions: divisors 1, 2, 3, 6; threshold 10
    t = trigger(lagThreshold="10", ensureEvenDistributionOfPartitions="true")
    parts = [(0, lag, 0)] + [(0, 0, i) for i in range(1, 6)]
    assert t.evaluate(offsets(*parts)).value == expected


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def remembered(
    t: KafkaTrigger, history: MemoryHistory, now: float, *partitions: tuple[int, int, int]
) -> Measurement:
    """A fresh read of ``partitions`` at ``now``, with the facts the engine adds across reads."""
    backend = KafkaBackend(timeout=1.0)
    clock = history._clock
    assert isinstance(clock, Clock)
    clock.now = now
    return await backend.remember(t.connection, t.resource, offsets(*partitions), history)


async def test_unchanged_for_counts_from_the_first_sighting_and_restarts_on_a_change() -> None:
    t = trigger()
    history = MemoryHistory(clock=Clock())

    async def unchanged(now: float, *partitions: tuple[int, int, int]) -> list[float]:
        measurement = await remembered(t, history, now, *partitions)
        return [float(i["unchanged_for"]) for i in measurement.items]

    assert await unchanged(100.0, (10, 20, 0), (-1, 20, 1)) == [0.0, 0.0]  # first sighting
    assert await unchanged(107.5, (10, 20, 0), (-1, 20, 1)) == [7.5, 7.5]
    assert await unchanged(110.0, (11, 20, 0), (-1, 20, 1)) == [0.0, 10.0]  # a commit resets
    # a commit that goes away (offsets expired) and comes back starts counting again
    assert await unchanged(111.0, (-1, 20, 0), (-1, 20, 1)) == [0.0, 11.0]
    assert await unchanged(112.0, (11, 20, 0), (-1, 20, 1)) == [0.0, 12.0]
    # the same offsets of another group, or through another connection, are other partitions
    other_group = trigger(consumerGroup="billing")
    measurement = await remembered(other_group, history, 113.0, (11, 20, 0))
    assert measurement.items[0]["unchanged_for"] == 0.0
    other_brokers = trigger(bootstrapServers="k3:9092")
    measurement = await remembered(other_brokers, history, 113.0, (11, 20, 0))
    assert measurement.items[0]["unchanged_for"] == 0.0


async def test_persistent_lag_is_excluded_from_the_metric_but_not_from_activity() -> None:
    t = trigger(excludePersistentLag="true", persistentLagSeconds="30", allowIdleConsumers="true")
    history = MemoryHistory(clock=Clock())

    async def evaluate(now: float, *partitions: tuple[int, int, int]) -> Evaluation:
        return t.evaluate(await remembered(t, history, now, *partitions))

    assert (await evaluate(0.0, (10, 20, 0), (10, 20, 1))).value == 20  # first sighting
    moving = await evaluate(26.0, (10, 20, 0), (15, 25, 1))  # partition 1 moved at 26 s
    assert moving.value == 20
    stuck = await evaluate(31.0, (10, 20, 0), (15, 25, 1))  # partition 0 unmoved for 31 s
    assert stuck.value == 10
    all_stuck = await evaluate(61.0, (10, 20, 0), (15, 25, 1))
    assert all_stuck.value == 0
    assert all_stuck.active  # activity counts persistent lag, as KEDA
    assert (await evaluate(62.0, (12, 20, 0), (15, 25, 1))).value == 8  # partition 0 moved


def test_activation_threshold_is_strict() -> None:
    t = trigger(activationLagThreshold="5", allowIdleConsumers="true")
    assert not t.evaluate(offsets((0, 5, 0))).active
    assert t.evaluate(offsets((0, 6, 0))).active
