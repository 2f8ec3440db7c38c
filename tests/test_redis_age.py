"""Enqueue times as Sidekiq, Celery, RQ and BullMQ store them, read into epoch seconds; and what
a read script's reply becomes (ages against Redis TIME, errors that name the missing fact)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE
from scaler.backends.redis import AgeSpec, RedisList
from scaler.backends.redis.age import MILLISECONDS_FROM, TimestampError, from_json, from_text
from scaler.backends.redis.reply import Value, read
from scaler.backends.redis.scripts import READ_GROUP, read_arguments
from scaler.errors import UnsupportedResource

#: 2024-05-01T12:00:00Z
NOON = datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
WHERE = "redis r:6379 db 0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1714564800", NOON, id="epoch seconds"),
        pytest.param("1714564800.25", NOON + 0.25, id="epoch seconds with a fraction"),
        pytest.param("1714564800250", NOON + 0.25, id="epoch milliseconds"),
        pytest.param(" 1714564800 ", NOON, id="trimmed"),
        pytest.param("2024-05-01T12:00:00Z", NOON, id="RFC 3339, Z"),
        pytest.param("2024-05-01T12:00:00.123456Z", NOON + 0.123456, id="RQ's format"),
        pytest.param("2024-05-01T14:30:00+02:30", NOON, id="positive offset"),
        pytest.param("2024-05-01T07:00:00.5-05:00", NOON + 0.5, id="negative offset, fraction"),
        pytest.param("2024-05-01 12:00:00z", NOON, id="space and lower-case z"),
        pytest.param("2024-05-01T11:59:60Z", NOON, id="a leap second is the next minute"),
    ],
)
def test_text_timestamps(text: str, expected: float) -> None:
    assert from_text(text) == pytest.approx(expected, abs=1e-6)


def test_seconds_and_milliseconds_are_told_apart_by_magnitude() -> None:
    # the threshold: 1e11 as seconds is the year 5138, as milliseconds March 1973
    assert from_text(str(MILLISECONDS_FROM - 1)) == MILLISECONDS_FROM - 1
    assert from_text(str(int(MILLISECONDS_FROM))) == MILLISECONDS_FROM / 1000
    assert from_json('{"t": 1714564800}', "t") == from_json('{"t": 1714564800000}', "t") == NOON


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("2024-05-01T12:00:00", "has no UTC offset", id="no offset: zone unknown"),
        pytest.param("yesterday", "is not epoch seconds, epoch milliseconds", id="words"),
        pytest.param("2024-13-01T00:00:00Z", "is not epoch", id="month 13"),
        pytest.param("2024-05-01T12:00:61Z", "is not epoch", id="second 61"),
        pytest.param("2024-05-01T12:00:00+24:00", "is not epoch", id="offset 24 h"),
        pytest.param("2024-05-01", "is not epoch", id="a date alone"),
        pytest.param("-5", "is not epoch", id="negative"),
        pytest.param("1e15", "'1e15' is not epoch", id="beyond milliseconds of the year 5138"),
        pytest.param("nan", "is not epoch", id="nan"),
    ],
)
def test_text_that_is_no_time_is_refused(text: str, problem: str) -> None:
    with pytest.raises(TimestampError, match=re.escape(problem)):
        from_text(text)


@pytest.mark.parametrize(
    ("element", "path", "expected"),
    [
        pytest.param(
            '{"class":"HardWorker","enqueued_at":1714564800.5}',
            "enqueued_at",
            NOON + 0.5,
            id="Sidekiq 7: float seconds",
        ),
        pytest.param(
            '{"class":"HardWorker","enqueued_at":1714564800500}',
            "enqueued_at",
            NOON + 0.5,
            id="Sidekiq 8: integer milliseconds",
        ),
        pytest.param(
            '{"body":"W10=","headers":{"task":"t","enqueued_at":"2024-05-01T12:00:00+00:00"}}',
            "headers.enqueued_at",
            NOON,
            id="Celery: a header set by a publish hook, a dot goes into the object",
        ),
        pytest.param('{"t":"1714564800"}', "t", NOON, id="a number in a string"),
    ],
)
def test_json_elements(element: str, path: str, expected: float) -> None:
    assert from_json(element, path) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("element", "path", "problem"),
    [
        pytest.param("job-42", "t", "not a JSON object: 'job-42'", id="an id, not JSON"),
        pytest.param("[1714564800]", "t", "not a JSON object", id="an array"),
        pytest.param('{"x":1}', "t", "no field 't' (timestampField)", id="no such field"),
        pytest.param('{"h":{"x":1}}', "h.t", "no field 'h.t'", id="no such nested field"),
        pytest.param('{"h":5}', "h.t", "no field 'h.t'", id="a path through a number"),
        pytest.param('{"t":null}', "t", "field 't': 'null' is not epoch", id="null"),
        pytest.param('{"t":true}', "t", "field 't': 'true' is not epoch", id="a boolean"),
        pytest.param('{"t":"soon"}', "t", "field 't': 'soon' is not epoch", id="words"),
        pytest.param('{"t":-1}', "t", "field 't': '-1' is not", id="negative"),
        pytest.param('{"t":NaN}', "t", "field 't': 'NaN' is not", id="NaN"),
        pytest.param('{"t":' + "9" * 400 + "}", "t", "is not epoch", id="an integer beyond float"),
    ],
)
def test_json_elements_that_say_no_time_are_refused(element: str, path: str, problem: str) -> None:
    with pytest.raises(TimestampError, match=re.escape(problem)):
        from_json(element, path)


def test_a_refused_element_is_quoted_to_80_characters_and_masked() -> None:
    element = "redis://user:hunter2-secret@host/" + "x" * 200
    with pytest.raises(TimestampError) as err:
        from_json(element, "t")
    assert "hunter2-secret" not in str(err.value)
    quoted = str(err.value).split(": ", 1)[1]
    assert len(quoted) <= 80 + len("''...")
    assert quoted.endswith("...'")


def _reply(now: float, *groups: tuple[Value, ...]) -> list[Value]:
    """A reply of the read script: TIME as Redis gives it, then each resource's values."""
    seconds, micros = int(now), round((now - int(now)) * 1_000_000)
    flat: list[Value] = [str(seconds).encode(), str(micros).encode()]
    for group in groups:
        assert len(group) == READ_GROUP
        flat += group
    return flat


JSON_AGE = AgeSpec("right", "enqueued_at")
HASH_AGE = AgeSpec("right", "timestamp", "bull:q:{}")


def test_age_is_redis_time_minus_the_enqueue_time() -> None:
    resource = RedisList("q", JSON_AGE)
    element = json.dumps({"enqueued_at": NOON}).encode()
    [m] = read(WHERE, [resource], _reply(NOON + 12.5, (b"list", 3, element, b"", None, b"", -1)))
    assert not isinstance(m, Exception)
    assert m.value == 3
    assert m.facts[OLDEST_AGE] == pytest.approx(12.5)
    assert m.facts["oldest_enqueued_at"] == NOON
    assert m.facts["broker_time"] == pytest.approx(NOON + 12.5)
    assert "oldest_in_future_seconds" not in m.facts


def test_an_empty_list_is_age_0_and_a_future_time_counts_0_and_is_reported() -> None:
    empty, ahead = RedisList("a", JSON_AGE), RedisList("b", HASH_AGE)
    outcomes = read(
        WHERE,
        [empty, ahead],
        _reply(
            NOON,
            (b"none", 0, None, b"", None, b"", -1),
            (b"list", 1, b"7", b"hash", str(int(NOON * 1000) + 2500).encode(), b"", -1),
        ),
    )
    assert [m.facts[OLDEST_AGE] for m in outcomes if not isinstance(m, Exception)] == [0, 0]
    assert outcomes[1].facts["oldest_in_future_seconds"] == pytest.approx(2.5)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("group", "problem"),
    [
        pytest.param(
            (b"list", 1, b"7", b"none", None, b"", -1),
            "the oldest element of 'q' names the hash 'bull:q:7', which does not exist, so its "
            "enqueue time (field 'timestamp') is unknown",
            id="missing hash",
        ),
        pytest.param(
            (b"list", 1, b"7", b"hash", None, b"", -1),
            "the hash 'bull:q:7' of the oldest element of 'q' has no field 'timestamp' "
            "(timestampField)",
            id="missing field",
        ),
        pytest.param(
            (b"list", 1, b"7", b"string", None, b"", -1),
            "names 'bull:q:7', which is a string, not a hash",
            id="not a hash",
        ),
        pytest.param(
            (b"list", 1, b"7", b"hash", b"tomorrow", b"", -1),
            "field 'timestamp' of the hash 'bull:q:7': 'tomorrow' is not epoch seconds",
            id="a field that is no time",
        ),
        pytest.param(
            (b"zset", 4, None, b"", None, b"", -1),
            "key 'q' is a zset; mode OldestAge reads lists only",
            id="OldestAge on a sorted set",
        ),
    ],
)
def test_an_age_that_cannot_be_read_is_an_error_naming_the_fact(
    group: tuple[Value, ...], problem: str
) -> None:
    [outcome] = read(WHERE, [RedisList("q", HASH_AGE)], _reply(NOON, group))
    assert isinstance(outcome, UnsupportedResource)
    assert str(outcome).startswith(f"{WHERE}: ")
    assert problem in str(outcome)


def test_processing_list_length_is_in_flight_and_keda_types_still_count() -> None:
    resource = RedisList("s", None, "s:active")
    [m] = read(WHERE, [resource], _reply(NOON, (b"set", 6, None, b"", None, b"list", 2)))
    assert not isinstance(m, Exception)
    assert (m.value, m.facts[IN_FLIGHT], m.facts["type"]) == (6, 2, "set")
    assert OLDEST_AGE not in m.facts
    [bad] = read(WHERE, [resource], _reply(NOON, (b"list", 6, None, b"", None, b"hash", -1)))
    assert str(bad) == f"{WHERE}: processing list 's:active' is a hash, not a list"


def test_one_bad_resource_leaves_the_others_of_a_batch_measured() -> None:
    good, bad = RedisList("g", JSON_AGE), RedisList("b", JSON_AGE)
    element = json.dumps({"enqueued_at": NOON}).encode()
    outcomes = read(
        WHERE,
        [good, bad],
        _reply(
            NOON + 1,
            (b"list", 1, element, b"", None, b"", -1),
            (b"list", 1, b"?", b"", None, b"", -1),
        ),
    )
    assert outcomes[0].facts[OLDEST_AGE] == pytest.approx(1)  # type: ignore[union-attr]
    assert isinstance(outcomes[1], UnsupportedResource)


def test_script_arguments_name_each_end_hash_and_processing_list() -> None:
    keys, argv = read_arguments(
        [
            RedisList("plain"),
            RedisList("sidekiq", AgeSpec("right", "enqueued_at")),
            RedisList("rq:queue:q", AgeSpec("left", "enqueued_at", "rq:job:{}")),
            RedisList("bull:q:wait", AgeSpec("right", "timestamp", "bull:q:{}"), "bull:q:active"),
        ]
    )
    assert keys == ["plain", "sidekiq", "rq:queue:q", "bull:q:wait", "bull:q:active"]
    assert argv == [
        *("", "0", "", "", "", "0"),
        *("-1", "0", "", "", "", "0"),
        *("0", "1", "rq:job:", "", "enqueued_at", "0"),
        *("-1", "1", "bull:q:", "", "timestamp", "1"),
    ]
