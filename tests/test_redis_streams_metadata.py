"""The stream backends' metadata, table-driven as KEDA's redis_streams_scaler_test.go: KEDA
v2.20.2's keys, defaults and choice of measure, our age modes and work in flight, every problem
in one error, metric names; and each measure's arithmetic on the facts of a read."""

from __future__ import annotations

from typing import Any

import pytest

from scaler.backends import build_backends
from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Evaluation, Measurement
from scaler.backends.redis import (
    RedisClusterConnection,
    RedisConnection,
    RedisSentinelConnection,
    RedisStream,
    StreamTrigger,
)
from scaler.errors import MetadataError

BACKENDS = build_backends(1.0)
TYPES = ("redis-streams", "redis-cluster-streams", "redis-sentinel-streams")
#: what each type needs besides the stream keys to connect
CONNECT = {
    "redis-streams": {"address": "redis.svc:6379"},
    "redis-cluster-streams": {"addresses": "r1:6379,r0:6379"},
    "redis-sentinel-streams": {"addresses": "s0:26379", "sentinelMaster": "mymaster"},
}
STREAM = {"stream": "orders"}
GROUP = {**STREAM, "consumerGroup": "workers"}
UNDELIVERED = {**GROUP, "mode": "OldestUndeliveredAge", "value": "30"}


def parse(backend: str, metadata: dict[str, str]) -> StreamTrigger:
    trigger = BACKENDS[backend].parse({"backend": backend, **CONNECT[backend], **metadata})
    assert isinstance(trigger, StreamTrigger)
    return trigger


def problems(backend: str, metadata: dict[str, str]) -> tuple[str, ...]:
    with pytest.raises(MetadataError) as err:
        parse(backend, metadata)
    return err.value.problems


@pytest.mark.parametrize("backend", TYPES)
@pytest.mark.parametrize(
    ("metadata", "measure", "resource", "target", "activation"),
    [
        pytest.param(
            STREAM, "streamLength", RedisStream("orders"), 5, 0, id="no group: XLEN, target 5"
        ),
        pytest.param(
            {**STREAM, "streamLength": "12", "activationLagCount": "3"},
            "streamLength",
            RedisStream("orders"),
            12,
            3,
            id="streamLength and activationLagCount",
        ),
        pytest.param(
            {**STREAM, "lagCount": "7", "pendingEntriesCount": "9"},
            "streamLength",
            RedisStream("orders"),
            5,
            0,
            id="without a group KEDA ignores lagCount and pendingEntriesCount",
        ),
        pytest.param(
            GROUP,
            "pendingEntriesCount",
            RedisStream("orders", "workers", "pending"),
            5,
            0,
            id="a group without lagCount: XPENDING, target 5",
        ),
        pytest.param(
            {**GROUP, "pendingEntriesCount": "20", "streamLength": "99"},
            "pendingEntriesCount",
            RedisStream("orders", "workers", "pending"),
            20,
            0,
            id="a group ignores streamLength",
        ),
        pytest.param(
            {**GROUP, "lagCount": "3", "activationLagCount": "1", "pendingEntriesCount": "9"},
            "lagCount",
            RedisStream("orders", "workers", "lag"),
            3,
            1,
            id="a group with lagCount: the lag, target lagCount",
        ),
        pytest.param(
            {**UNDELIVERED, "activationValue": "2.5"},
            "OldestUndeliveredAge",
            RedisStream("orders", "workers", "ages"),
            30,
            2.5,
            id="OldestUndeliveredAge",
        ),
        pytest.param(
            {**UNDELIVERED, "mode": "OldestPendingAge", "value": "90.5"},
            "OldestPendingAge",
            RedisStream("orders", "workers", "ages"),
            90.5,
            0,
            id="OldestPendingAge",
        ),
        pytest.param(
            {"streamFromEnv": "orders", "consumerGroupFromEnv": "workers", "lagCount": " 4 "},
            "lagCount",
            RedisStream("orders", "workers", "lag"),
            4,
            0,
            id="FromEnv keys carry resolved values; values are trimmed",
        ),
    ],
)
def test_the_measure_is_kedas_choice_or_the_mode(
    backend: str,
    metadata: dict[str, str],
    measure: str,
    resource: RedisStream,
    target: float,
    activation: float,
) -> None:
    trigger = parse(backend, metadata)
    threshold = (
        trigger.params.activation_value
        if trigger.measures_age
        else trigger.params.activation_lag_count
    )
    assert (trigger.measure, trigger.resource, trigger.target, threshold) == (
        measure,
        resource,
        target,
        activation,
    )
    assert trigger.measures_age is measure.startswith("Oldest")


def test_each_type_connects_in_its_topology() -> None:
    assert parse("redis-streams", {**STREAM, "databaseIndex": "2"}).connection == (
        RedisConnection("redis.svc", 6379, 2)
    )
    assert parse("redis-cluster-streams", STREAM).connection == RedisClusterConnection(
        (("r0", 6379), ("r1", 6379))
    )
    sentinel = parse("redis-sentinel-streams", {**STREAM, "password": "pw", "databaseIndex": "1"})
    assert sentinel.connection == RedisSentinelConnection(
        (("s0", 26379),), "mymaster", 1, password="pw"
    )
    assert "pw" not in repr(sentinel)


@pytest.mark.parametrize("backend", TYPES)
@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({}, ["missing required parameter stream"], id="no stream"),
        pytest.param(
            {**STREAM, "streamLength": "0"},
            ["streamLength: '0' must be greater than 0"],
            id="zero streamLength",
        ),
        pytest.param(
            {**GROUP, "pendingEntriesCount": "-1"},
            ["pendingEntriesCount: '-1' must be greater than 0"],
            id="negative pendingEntriesCount",
        ),
        pytest.param(
            {**GROUP, "lagCount": "0"},
            ["lagCount: '0' must be greater than 0"],
            id="lagCount 0 (KEDA would silently measure pending entries)",
        ),
        pytest.param(
            {**GROUP, "lagCount": "2.5"}, ["lagCount: '2.5' is not a valid integer"], id="decimal"
        ),
        pytest.param(
            {**STREAM, "activationLagCount": "-1"},
            ["activationLagCount: '-1' must be 0 or greater"],
            id="negative activationLagCount",
        ),
        pytest.param(
            {**GROUP, "mode": "Lag"},
            ["mode: 'Lag' must be one of [OldestUndeliveredAge, OldestPendingAge]"],
            id="unknown mode",
        ),
        pytest.param(
            {**STREAM, "mode": "OldestPendingAge", "value": "10"},
            ["mode: OldestPendingAge needs consumerGroup"],
            id="an age without a group",
        ),
        pytest.param(
            {**GROUP, "mode": "OldestUndeliveredAge"},
            ["missing required parameter value (the target age in seconds"],
            id="an age without value",
        ),
        pytest.param(
            {**UNDELIVERED, "value": "0"}, ["value: '0' must be greater than 0"], id="value 0"
        ),
        pytest.param(
            {**UNDELIVERED, "activationValue": "-2"},
            ["activationValue: '-2' must be 0 or greater"],
            id="negative activationValue",
        ),
        pytest.param(
            {**GROUP, "value": "10", "activationValue": "1"},
            [
                "value applies only with mode: OldestUndeliveredAge or OldestPendingAge",
                "activationValue applies only with mode",
            ],
            id="age keys without mode",
        ),
        pytest.param(
            {**UNDELIVERED, "lagCount": "5", "activationLagCount": "1", "streamLength": "4"},
            [
                "lagCount applies only without mode (with OldestUndeliveredAge the metric is an",
                "activationLagCount applies only without mode",
                "streamLength applies only without mode",
            ],
            id="KEDA's keys with an age mode",
        ),
        pytest.param(
            {**STREAM, "activeWhileInFlight": "true"},
            ["activeWhileInFlight needs consumerGroup"],
            id="work in flight without a group",
        ),
        pytest.param(
            {**GROUP, "activeWhileInFlight": "sometimes"},
            ["activeWhileInFlight: 'sometimes' is not a boolean"],
            id="bad boolean",
        ),
        pytest.param(
            {"stream": "redis://:pw-in-name@h:6379"},
            ["contains a URI with a password"],
            id="a connection string as the stream",
        ),
    ],
)
def test_invalid_metadata_names_every_problem(
    backend: str, metadata: dict[str, str], expected: list[str]
) -> None:
    found = problems(backend, metadata)
    for problem in expected:
        assert any(problem in p for p in found), found
    assert len(found) == len(expected), found
    assert "pw-in-name" not in " ".join(found)


@pytest.mark.parametrize("backend", TYPES)
def test_every_bad_key_in_one_invalid_argument(backend: str) -> None:
    found = problems(
        backend,
        {
            "consumerGroup": "workers",
            "lagCount": "x",
            "pendingEntriesCount": "0",
            "activationLagCount": "-4",
            "activeWhileInFlight": "maybe",
            "databaseIndex": "-1",
            "password": "s3cr3t-stream",
        },
    )
    message = " ".join(found)
    for key in (
        "stream",
        "lagCount",
        "pendingEntriesCount",
        "activationLagCount",
        "activeWhileInFlight",
        "databaseIndex",
    ):
        assert key in message
    assert "s3cr3t-stream" not in message


def test_topology_rules_of_the_connection_keys() -> None:
    assert problems("redis-cluster-streams", {**STREAM, "databaseIndex": "1"}) == (
        "redis-cluster-streams: databaseIndex: 1: Redis Cluster has database 0 only "
        "(KEDA ignores the key)",
    )
    found = problems("redis-sentinel-streams", {**STREAM, "sentinelMaster": ""})
    assert any("missing required parameter sentinelMaster" in p for p in found)


@pytest.mark.parametrize("backend", TYPES)
@pytest.mark.parametrize(
    ("stream", "kedas"),
    [
        ("orders", "redis-streams-orders"),
        ("Orders_High", "redis-streams-Orders_High"),
        ("Orders/High.Priority:v2", "redis-streams-Orders-High-Priority-v2"),
        ("a(b):c%d", "redis-streams-a-b--c-d"),
        ("{tenant}.events/raw", "redis-streams-{tenant}-events-raw"),
    ],
)
@pytest.mark.parametrize("extra", [{}, GROUP, {**GROUP, "lagCount": "2"}, UNDELIVERED])
def test_metric_name_is_kedas_for_every_measure(
    backend: str, stream: str, kedas: str, extra: dict[str, str]
) -> None:
    # KEDA v2.20.2: NormalizeString("redis-streams-" + stream), case and `_` kept
    assert parse(backend, {**extra, "stream": stream}).metric_name() == kedas


def test_triggers_differing_only_in_thresholds_share_one_read() -> None:
    def read(metadata: dict[str, str]) -> tuple[Any, RedisStream]:
        trigger = parse("redis-streams", metadata)
        return trigger.connection, trigger.resource

    assert read(GROUP) == read({**GROUP, "pendingEntriesCount": "50", "activationLagCount": "3"})
    assert read({**GROUP, "lagCount": "1"}) == read({**GROUP, "lagCount": "100"})
    # the two ages are one read; each measure that may answer differently is another
    assert read(UNDELIVERED) == read({**UNDELIVERED, "mode": "OldestPendingAge", "value": "9"})
    reads = {read(STREAM), read(GROUP), read({**GROUP, "lagCount": "1"}), read(UNDELIVERED)}
    assert len(reads) == 4


def test_the_resource_label_names_stream_and_group() -> None:
    assert parse("redis-streams", GROUP).resource_label() == "redis.svc:6379/0/orders/workers"
    assert parse("redis-streams", STREAM).resource_label() == "redis.svc:6379/0/orders"


# --- each measure's arithmetic on the facts of a read -------------------------------------------

FACTS: dict[str, float | str] = {
    "type": "stream",
    "stream_exists": 1.0,
    "xlen": 40.0,
    "group_exists": 1.0,
    "pending": 3.0,
    IN_FLIGHT: 3.0,
    "lag": 12.0,
    "oldest_undelivered_age_seconds": 8.5,
    OLDEST_AGE: 8.5,
    "oldest_pending_age_seconds": 61.0,
}
READ = Measurement(40.0, FACTS)


@pytest.mark.parametrize(
    ("metadata", "threshold", "value"),
    [
        pytest.param(STREAM, "activationLagCount", 40, id="streamLength: XLEN"),
        pytest.param(GROUP, "activationLagCount", 3, id="pendingEntriesCount: XPENDING's count"),
        pytest.param({**GROUP, "lagCount": "5"}, "activationLagCount", 12, id="lagCount: the lag"),
        pytest.param(UNDELIVERED, "activationValue", 8.5, id="OldestUndeliveredAge"),
        pytest.param(
            {**UNDELIVERED, "mode": "OldestPendingAge"},
            "activationValue",
            61,
            id="OldestPendingAge",
        ),
    ],
)
def test_each_measure_reads_its_fact_and_activation_is_strict(
    metadata: dict[str, str], threshold: str, value: float
) -> None:
    below = parse("redis-streams", {**metadata, threshold: str(int(value) - 1)})
    at = parse("redis-streams", {**metadata, threshold: str(value)})
    assert below.evaluate(READ).value == at.evaluate(READ).value == value
    assert (below.evaluate(READ).active, at.evaluate(READ).active) == (True, False)


def test_kedas_lag_for_a_missing_stream_is_0_and_for_a_missing_group_the_length() -> None:
    lag = parse("redis-streams", {**GROUP, "lagCount": "5"})
    missing_stream = Measurement(0.0, {"type": "none", "stream_exists": 0.0, "group_exists": 0.0})
    assert lag.evaluate(missing_stream) == Evaluation(0.0, False)
    missing_group = Measurement(9.0, {"type": "stream", "stream_exists": 1.0, "group_exists": 0.0})
    assert lag.evaluate(missing_group) == Evaluation(9.0, True)
    # nothing was delivered by a group that does not exist: not in flight
    waiting = parse("redis-streams", {**GROUP, "lagCount": "5", "activeWhileInFlight": "true"})
    assert waiting.evaluate(missing_stream).active is False


@pytest.mark.parametrize(
    ("metadata", "threshold"),
    [
        pytest.param(GROUP, "activationLagCount", id="pendingEntriesCount"),
        pytest.param({**GROUP, "lagCount": "5"}, "activationLagCount", id="lagCount"),
        pytest.param(UNDELIVERED, "activationValue", id="OldestUndeliveredAge"),
    ],
)
def test_active_while_in_flight_keeps_a_trigger_active_on_pending_entries(
    metadata: dict[str, str], threshold: str
) -> None:
    idle: dict[str, float | str] = {
        **FACTS,
        "lag": 0.0,
        OLDEST_AGE: 0.0,
        "oldest_undelivered_age_seconds": 0.0,
        "pending": 0.0,
        IN_FLIGHT: 0.0,
    }
    running = Measurement(40.0, {**idle, IN_FLIGHT: 2.0, "pending": 2.0})
    # thresholds above what the read says: only the work in flight can make it active
    plain = parse("redis-streams", {**metadata, threshold: "5"})
    kept = parse("redis-streams", {**metadata, threshold: "5", "activeWhileInFlight": "true"})
    assert kept.evaluate(Measurement(40.0, idle)).active is False
    assert (plain.evaluate(running).active, kept.evaluate(running).active) == (False, True)
    assert kept.evaluate(running).value == plain.evaluate(running).value
