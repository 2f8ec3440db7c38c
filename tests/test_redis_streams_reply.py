"""What a reply of the stream script becomes: the lag correction, KEDA's answers or NOT_FOUND
for a missing stream or group, the ages against Redis TIME, ids that are no time, and each
resource's outcome apart from the others'."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.backends.redis import RedisStream
from scaler.backends.redis.reply import Value
from scaler.backends.redis.stream_reply import read
from scaler.backends.redis.stream_scripts import (
    COUNT_CHUNK,
    COUNT_LIMIT,
    NOT_COUNTED,
    STREAM_GROUP,
    TOO_MANY,
    stream_arguments,
)
from scaler.errors import TargetNotFound, UnsupportedResource

WHERE = "redis r:6379 db 0"
#: Redis TIME of the replies: 2026-05-01T12:00:00.250Z
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp() + 0.25
NOW_MS = int(NOW * 1000)

LENGTH = RedisStream("s")
LAG = RedisStream("s", "g", "lag")
PENDING = RedisStream("s", "g", "pending")
AGES = RedisStream("s", "g", "ages")


def group(
    *,
    key_type: bytes = b"stream",
    xlen: int = 10,
    found: int = 1,
    pending: int | None = 2,
    last: str | None = f"{NOW_MS - 9000}-0",
    entries_read: int | None = 6,
    lag: int | None = 4,
    oldest_pending: str | None = f"{NOW_MS - 60_000}-3",
    undelivered: str | None = f"{NOW_MS - 5000}-0",
    counted: int = NOT_COUNTED,
    added: int | None = None,
) -> tuple[Value, ...]:
    """One resource's values in the script's reply, as Redis would give them."""
    values = (
        key_type,
        xlen,
        found,
        pending,
        None if last is None else last.encode(),
        entries_read,
        lag,
        None if oldest_pending is None else oldest_pending.encode(),
        None if undelivered is None else undelivered.encode(),
        counted,
        added,
    )
    assert len(values) == STREAM_GROUP
    return values


def reply(*groups: tuple[Value, ...]) -> list[Value]:
    seconds = int(NOW)
    flat: list[Value] = [str(seconds).encode(), str(round((NOW - seconds) * 1e6)).encode()]
    for values in groups:
        flat += values
    return flat


def measured(resource: RedisStream, values: tuple[Value, ...]) -> Measurement:
    [outcome] = read(WHERE, [resource], reply(values))
    assert isinstance(outcome, Measurement), outcome
    return outcome


def test_a_groups_facts_and_kedas_counts() -> None:
    m = measured(LAG, group())
    assert m.value == 10
    assert {k: m.facts[k] for k in ("xlen", "pending", IN_FLIGHT, "lag", "lag_source")} == {
        "xlen": 10,
        "pending": 2,
        IN_FLIGHT: 2,
        "lag": 4,
        "lag_source": "xinfo",
    }
    assert (m.facts["stream_exists"], m.facts["group_exists"]) == (1, 1)
    # a count carries no clock: unchanged, it is the same measurement, and wakes no watcher
    assert "broker_time" not in m.facts
    assert m == measured(LAG, group())
    assert "lag_counted_because" not in m.facts


@pytest.mark.parametrize(
    ("lag", "entries_read", "counted", "added", "because", "deleted"),
    [
        pytest.param(None, None, 7, None, "null", None, id="null after XGROUP SETID"),
        pytest.param(None, 6, 3, 10, "null", 1, id="null after XDEL: one undelivered deleted"),
        pytest.param(9, 4, 3, 10, "larger_than_xlen", 3, id="XTRIM: counts the trimmed"),
    ],
)
def test_an_unusable_lag_is_counted(
    lag: int | None,
    entries_read: int | None,
    counted: int,
    added: int | None,
    because: str,
    deleted: int | None,
) -> None:
    xlen = 3 if because == "larger_than_xlen" else 10
    m = measured(
        LAG, group(xlen=xlen, lag=lag, entries_read=entries_read, counted=counted, added=added)
    )
    assert (m.facts["lag"], m.facts["lag_source"], m.facts["lag_counted_because"]) == (
        counted,
        "counted",
        because,
    )
    assert m.facts.get("xinfo_lag") == lag
    assert m.facts.get("deleted_undelivered") == deleted


def test_a_lag_equal_to_xlen_is_redis_own() -> None:
    m = measured(LAG, group(xlen=4, lag=4))
    assert (m.facts["lag"], m.facts["lag_source"]) == (4, "xinfo")


def test_other_reads_leave_an_unusable_lag_out_instead_of_counting() -> None:
    m = measured(PENDING, group(lag=None))
    assert "lag" not in m.facts
    assert m.facts["pending"] == 2


def test_a_count_beyond_the_limit_is_failed_precondition_not_a_guess() -> None:
    [outcome] = read(WHERE, [LAG], reply(group(lag=None, counted=TOO_MANY)))
    assert isinstance(outcome, UnsupportedResource)
    assert f"would read more than {COUNT_LIMIT} entries" in str(outcome)
    assert "group 'g'" in str(outcome)


MISSING_STREAM = (b"none", 0, 0, *(None,) * 6, NOT_COUNTED, None)
MISSING_GROUP = (b"stream", 5, 0, *(None,) * 6, NOT_COUNTED, None)


@pytest.mark.parametrize("resource", [LENGTH, LAG])
def test_a_missing_stream_is_an_answer_for_length_and_lag(resource: RedisStream) -> None:
    m = measured(resource, MISSING_STREAM)
    assert (m.value, m.facts["stream_exists"]) == (0, 0)
    assert m.facts.get("group_exists", 0) == 0


def test_a_missing_group_is_an_answer_for_lag() -> None:
    m = measured(LAG, MISSING_GROUP)
    assert (m.value, m.facts["stream_exists"], m.facts["group_exists"]) == (5, 1, 0)
    assert "pending" not in m.facts


@pytest.mark.parametrize("resource", [PENDING, AGES])
def test_a_missing_stream_or_group_is_not_found_naming_it(resource: RedisStream) -> None:
    stream, grp = read(WHERE, [resource, resource], reply(MISSING_STREAM, MISSING_GROUP))
    assert isinstance(stream, TargetNotFound)
    assert str(stream).startswith(f"{WHERE}: stream 's' does not exist")
    assert isinstance(grp, TargetNotFound)
    assert "stream 's' has no consumer group 'g'" in str(grp)


@pytest.mark.parametrize("resource", [LENGTH, LAG, PENDING, AGES])
def test_another_type_is_failed_precondition_naming_it(resource: RedisStream) -> None:
    [outcome] = read(WHERE, [resource], reply((b"list", 0, 0, *(None,) * 6, NOT_COUNTED, None)))
    assert isinstance(outcome, UnsupportedResource)
    assert str(outcome) == f"{WHERE}: key 's' is a list, not a stream"


def test_ages_are_redis_time_minus_the_ids_milliseconds() -> None:
    m = measured(AGES, group())
    assert m.facts["oldest_undelivered_age_seconds"] == pytest.approx(5.0, abs=1e-3)
    assert m.facts[OLDEST_AGE] == m.facts["oldest_undelivered_age_seconds"]
    assert m.facts["oldest_pending_age_seconds"] == pytest.approx(60.0, abs=1e-3)
    assert m.facts["oldest_pending_id"] == f"{NOW_MS - 60_000}-3"
    assert m.facts["oldest_undelivered_id"] == f"{NOW_MS - 5000}-0"
    assert m.facts["broker_time"] == pytest.approx(NOW)  # the clock the ages are measured on


def test_nothing_undelivered_or_pending_is_age_0() -> None:
    m = measured(AGES, group(pending=0, oldest_pending=None, undelivered=None, lag=0))
    assert (m.facts[OLDEST_AGE], m.facts["oldest_pending_age_seconds"]) == (0, 0)
    assert "oldest_undelivered_id" not in m.facts


def test_an_id_a_little_ahead_of_the_clock_waited_0() -> None:
    m = measured(AGES, group(undelivered=f"{NOW_MS + 2000}-0"))
    assert m.facts[OLDEST_AGE] == 0


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("1-1", id="an explicit small id"),
        pytest.param("946684799999-0", id="just before 2000"),
        pytest.param(f"{NOW_MS + 86_400_001}-0", id="more than a day ahead"),
    ],
)
@pytest.mark.parametrize("which", ["undelivered", "oldest_pending"])
def test_an_id_that_is_no_time_fails_the_ages_only(entry: str, which: str) -> None:
    values = group(undelivered=entry) if which == "undelivered" else group(oldest_pending=entry)
    [outcome] = read(WHERE, [AGES], reply(values))
    assert isinstance(outcome, UnsupportedResource)
    assert re.search(rf"has the id '{entry}', which is no time", str(outcome)), str(outcome)
    assert "stream 's', group 'g': the " in str(outcome)
    assert "XADD with *" in str(outcome)
    # a count has no use for the id's time: the age is left out, the count stands
    m = measured(PENDING, values)
    assert m.facts["pending"] == 2
    age = (
        "oldest_undelivered_age_seconds" if which == "undelivered" else "oldest_pending_age_seconds"
    )
    assert age not in m.facts


def test_both_ids_that_are_no_time_are_named_at_once() -> None:
    [outcome] = read(WHERE, [AGES], reply(group(undelivered="2-1", oldest_pending="1-1")))
    assert isinstance(outcome, UnsupportedResource)
    assert (
        "the first undelivered entry has the id '2-1' and the oldest pending entry has the id "
        "'1-1', which is no time"
    ) in str(outcome)


def test_one_resources_failure_leaves_the_others_alone() -> None:
    wrong = (b"hash", 0, 0, *(None,) * 6, NOT_COUNTED, None)
    outcomes = read(
        WHERE,
        [PENDING, LENGTH, AGES, LAG, RedisStream("t", "g", "lag")],
        reply(MISSING_STREAM, wrong, group(undelivered="5-0"), group(), group(lag=None, counted=3)),
    )
    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert kinds == [
        "TargetNotFound",
        "UnsupportedResource",
        "UnsupportedResource",
        "Measurement",
        "Measurement",
    ]
    assert isinstance(outcomes[4], Measurement)
    assert outcomes[4].facts["lag"] == 3


def test_the_arguments_carry_each_group_and_whether_to_count() -> None:
    keys, argv = stream_arguments([LENGTH, LAG, PENDING, AGES, RedisStream("t", "g2", "lag")])
    assert keys == ["s", "s", "s", "s", "t"]
    assert argv == [
        str(COUNT_CHUNK),
        str(COUNT_LIMIT),
        *("", "0"),
        *("g", "1"),
        *("g", "0"),
        *("g", "0"),
        *("g2", "1"),
    ]
