"""backend: redis ``mode: OldestAge`` and work in flight: the keys, their cross-field rules, what
is shared between triggers, and the arithmetic of value and activity."""

from __future__ import annotations

import pytest

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.backends.redis import AgeSpec, RedisList
from scaler.backends.redis.scripts import plain
from scaler.errors import MetadataError
from tests.test_redis_metadata import BASE
from tests.test_redis_metadata import parse_metadata as parse

AGE = {**BASE, "mode": "OldestAge", "value": "30", "timestampField": "enqueued_at"}


@pytest.mark.parametrize(
    ("metadata", "resource"),
    [
        pytest.param(AGE, RedisList("jobs", AgeSpec("right", "enqueued_at")), id="Sidekiq"),
        pytest.param(
            {**AGE, "oldestEnd": "left", "timestampHashKey": "rq:job:{}"},
            RedisList("jobs", AgeSpec("left", "enqueued_at", "rq:job:{}")),
            id="RQ: left end, a hash per id",
        ),
        pytest.param(
            {
                **AGE,
                "listName": "bull:emails:wait",
                "timestampField": "timestamp",
                "timestampHashKey": "bull:emails:{}",
                "processingListName": "bull:emails:active",
                "activeWhileInFlight": "true",
            },
            RedisList(
                "bull:emails:wait",
                AgeSpec("right", "timestamp", "bull:emails:{}"),
                "bull:emails:active",
            ),
            id="BullMQ: ids, hashes and the active list",
        ),
        pytest.param(
            {**BASE, "processingListName": "jobs:processing", "includeProcessing": "true"},
            RedisList("jobs", None, "jobs:processing"),
            id="ListLength with a processing list",
        ),
    ],
)
def test_the_resource_carries_what_the_read_needs(
    metadata: dict[str, str], resource: RedisList
) -> None:
    assert parse(metadata).resource == resource


def test_oldest_age_target_and_metric_type() -> None:
    trigger = parse({**AGE, "value": "45.5", "activationValue": "5"})
    assert (trigger.target, trigger.measures_age, trigger.metric_name()) == (
        45.5,
        True,
        "redis-jobs",
    )
    assert parse(BASE).measures_age is False


def test_triggers_differing_only_in_thresholds_share_one_read() -> None:
    # a false flag is the default: harmless without a processing list
    a = parse({**AGE, "value": "30", "activationValue": "0", "activeWhileInFlight": "false"})
    b = parse({**AGE, "value": "600", "activationValue": "120"})
    assert (a.connection, a.resource) == (b.connection, b.resource)
    c = parse({**BASE, "listLength": "5", "processingListName": "p"})
    d = parse({**BASE, "listLength": "50", "processingListName": "p", "includeProcessing": "1"})
    assert (c.connection, c.resource) == (d.connection, d.resource)
    # an age is another read than a length: not shared, and a plain length keeps KEDA's script
    assert parse(BASE).resource == RedisList("jobs") != a.resource
    assert plain(parse(BASE).resource)
    assert not plain(a.resource)
    assert not plain(c.resource)


@pytest.mark.parametrize(
    ("metadata", "problems"),
    [
        pytest.param(
            {**BASE, "value": "30", "timestampField": "t", "oldestEnd": "left"},
            [
                "value applies only with mode: OldestAge",
                "timestampField applies only with mode: OldestAge",
                "oldestEnd applies only with mode: OldestAge",
            ],
            id="OldestAge keys without mode: OldestAge",
        ),
        pytest.param(
            {**BASE, "mode": "ListLength", "activationValue": "3", "timestampHashKey": "h:{}"},
            [
                "activationValue applies only with mode: OldestAge",
                "timestampHashKey applies only with mode: OldestAge",
            ],
            id="OldestAge keys with mode: ListLength",
        ),
        pytest.param(
            {**BASE, "mode": "OldestAge"},
            [
                "missing required parameter value (the target age in seconds",
                "missing required parameter timestampField",
            ],
            id="OldestAge without its target or timestamp",
        ),
        pytest.param(
            {**AGE, "listLength": "5", "activationListLength": "1"},
            [
                "listLength applies only with mode: ListLength",
                "activationListLength applies only with mode: ListLength",
            ],
            id="ListLength keys with OldestAge",
        ),
        pytest.param(
            {**AGE, "processingListName": "p", "includeProcessing": "true"},
            ["includeProcessing applies only with mode: ListLength"],
            id="includeProcessing with an age",
        ),
        pytest.param(
            {**BASE, "includeProcessing": "true", "activeWhileInFlight": "true"},
            [
                "includeProcessing needs processingListName",
                "activeWhileInFlight needs processingListName",
            ],
            id="in-flight options without a processing list",
        ),
        pytest.param(
            {**BASE, "processingListName": "jobs"},
            ["processingListName must differ from listName"],
            id="the processing list is the list",
        ),
        pytest.param(
            {**AGE, "timestampHashKey": "bull:emails"},
            ["timestampHashKey: 'bull:emails' must contain {} exactly once"],
            id="a hash key without its placeholder",
        ),
        pytest.param(
            {**AGE, "timestampHashKey": "{}:{}"},
            ["timestampHashKey: '{}:{}' must contain {} exactly once"],
            id="a hash key with two placeholders",
        ),
        pytest.param(
            {**AGE, "mode": "oldestage", "value": "30"},
            ["mode: 'oldestage' must be one of [ListLength, OldestAge]"],
            id="an unknown mode is the one problem, not each key it would take",
        ),
        pytest.param({**AGE, "value": "0"}, ["value: '0' must be greater than 0"], id="value 0"),
        pytest.param({**AGE, "value": "inf"}, ["value: 'inf' is not a finite number"], id="inf"),
        pytest.param(
            {**AGE, "activationValue": "-1"},
            ["activationValue: '-1' must be 0 or greater"],
            id="negative activation",
        ),
        pytest.param(
            {**AGE, "oldestEnd": "middle"},
            ["oldestEnd: 'middle' must be one of [right, left]"],
            id="an end that is not one",
        ),
        pytest.param(
            {**BASE, "activeWhileInFlight": "sometimes", "processingListName": "p"},
            ["activeWhileInFlight: 'sometimes' is not a boolean"],
            id="a flag that is not a boolean",
        ),
    ],
)
def test_cross_field_rules_name_every_problem(
    metadata: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(MetadataError) as err:
        parse(metadata)
    for problem in problems:
        assert any(problem in p for p in err.value.problems), err.value.problems
    assert len(err.value.problems) == len(problems), err.value.problems


@pytest.mark.parametrize(
    ("activation", "age", "active"),
    [("0", 0.0, False), ("0", 0.001, True), ("12.5", 12.5, False), ("12.5", 12.6, True)],
)
def test_age_is_the_metric_and_activity_is_strict(
    activation: str, age: float, active: bool
) -> None:
    trigger = parse({**AGE, "activationValue": activation})
    evaluation = trigger.evaluate(Measurement(7, {OLDEST_AGE: age}))
    assert (evaluation.value, evaluation.active) == (age, active)


def test_include_processing_counts_the_processing_list_in_value_and_activity() -> None:
    metadata = {**BASE, "processingListName": "p", "activationListLength": "4"}
    measurement = Measurement(3, {IN_FLIGHT: 2.0})
    without = parse(metadata).evaluate(measurement)
    with_it = parse({**metadata, "includeProcessing": "true"}).evaluate(measurement)
    assert (without.value, without.active) == (3, False)
    assert (with_it.value, with_it.active) == (5, True)


@pytest.mark.parametrize(
    ("extra", "in_flight", "active"),
    [
        pytest.param({"activeWhileInFlight": "true"}, 1.0, True, id="work in flight: active"),
        pytest.param({"activeWhileInFlight": "true"}, 0.0, False, id="nothing in flight"),
        pytest.param({}, 1.0, False, id="KEDA's behaviour by default"),
        pytest.param({**AGE, "activeWhileInFlight": "true"}, 3.0, True, id="with an age of 0 too"),
    ],
)
def test_active_while_in_flight_keeps_an_idle_queue_active(
    extra: dict[str, str], in_flight: float, active: bool
) -> None:
    trigger = parse({**BASE, **extra, "processingListName": "p"})
    evaluation = trigger.evaluate(Measurement(0, {IN_FLIGHT: in_flight, OLDEST_AGE: 0.0}))
    assert (evaluation.value, evaluation.active) == (0, active)


def test_a_fact_the_read_did_not_give_is_never_taken_as_0() -> None:
    with pytest.raises(KeyError, match=OLDEST_AGE):
        parse(AGE).evaluate(Measurement(3))
    with pytest.raises(KeyError, match=IN_FLIGHT):
        parse({**BASE, "processingListName": "p", "activeWhileInFlight": "1"}).evaluate(
            Measurement(3)
        )
