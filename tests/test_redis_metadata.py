"""backend: redis metadata, table-driven as KEDA's redis_scaler_test.go: names, defaults, errors."""

from __future__ import annotations

import pytest

from scaler.backends.base import Measurement
from scaler.backends.redis import RedisBackend, RedisConnection, RedisList, RedisTrigger
from scaler.errors import MetadataError

BASE = {"backend": "redis", "address": "redis.svc:6379", "listName": "jobs"}


def parse_metadata(metadata: dict[str, str]) -> RedisTrigger:
    trigger = RedisBackend(timeout=1.0).parse(metadata)
    assert isinstance(trigger, RedisTrigger)
    return trigger


def expect(
    connection: RedisConnection, resource: RedisList, list_length: int = 5, activation: int = 0
) -> tuple[RedisConnection, RedisList, int, int]:
    return connection, resource, list_length, activation


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param(
            BASE,
            expect(RedisConnection("redis.svc", 6379), RedisList("jobs")),
            id="defaults: listLength 5, activation 0, db 0, no TLS",
        ),
        pytest.param(
            {**BASE, "listLength": "10", "activationListLength": "2", "databaseIndex": "3"},
            expect(RedisConnection("redis.svc", 6379, 3), RedisList("jobs"), 10, 2),
            id="explicit target, activation and database",
        ),
        pytest.param(
            {"backend": "redis", "host": "10.0.0.1", "port": "6380", "listName": "jobs"},
            expect(RedisConnection("10.0.0.1", 6380), RedisList("jobs")),
            id="host and port instead of address",
        ),
        pytest.param(
            {"backend": "redis", "addressFromEnv": "r:1", "listName": "q", "passwordFromEnv": "pw"},
            expect(RedisConnection("r", 1, password="pw"), RedisList("q")),
            id="FromEnv keys carry resolved values",
        ),
        pytest.param(
            {**BASE, "password": "a", "passwordFromEnv": "b"},
            expect(RedisConnection("redis.svc", 6379, password="a"), RedisList("jobs")),
            id="the plain key wins over FromEnv",
        ),
        pytest.param(
            {
                **BASE,
                "address": "[::1]:6379",
                "username": "keda",
                "enableTLS": "true",
                "unsafeSsl": "1",
            },
            expect(
                RedisConnection("::1", 6379, username="keda", tls=True, unsafe_ssl=True),
                RedisList("jobs"),
            ),
            id="IPv6, ACL user, TLS without verification",
        ),
        pytest.param(
            {**BASE, "tls": "enable"},
            expect(RedisConnection("redis.svc", 6379, tls=True), RedisList("jobs")),
            id="tls: enable (KEDA's authParams name) turns TLS on too",
        ),
        pytest.param(
            {**BASE, "address": "a:1,b:2", "scalerAddress": "scaler:9090", "anything": "x"},
            expect(RedisConnection("a", 1), RedisList("jobs")),
            id="first of an address list; unknown keys ignored",
        ),
        pytest.param(
            {**BASE, "listLength": " 7 "},
            expect(RedisConnection("redis.svc", 6379), RedisList("jobs"), 7),
            id="values are trimmed",
        ),
    ],
)
def test_valid_metadata(metadata: dict[str, str], expected: tuple[object, ...]) -> None:
    t = parse_metadata(metadata)
    assert (t.connection, t.resource, t.params.list_length, t.params.activation_list_length) == (
        expected
    )


@pytest.mark.parametrize(
    ("metadata", "problems"),
    [
        pytest.param(
            {"backend": "redis"},
            ["missing required parameter address", "missing required parameter listName"],
            id="nothing given",
        ),
        pytest.param(
            {**BASE, "listLength": "AA"},
            ["listLength: 'AA' is not a valid integer"],
            id="non-integer target",
        ),
        pytest.param(
            {**BASE, "listLength": "0"},
            ["listLength: '0' must be greater than 0"],
            id="zero target",
        ),
        pytest.param(
            {**BASE, "listLength": "9" * 5000},
            ["is not a valid integer (too many digits)"],
            id="an integer too long for Python to convert is refused, not a crash",
        ),
        pytest.param(
            {**BASE, "address": "redis.svc:\u00b2"},
            ["address: 'redis.svc:\u00b2' is not host:port"],
            id="a port of non-ASCII digits is refused, not a crash",
        ),
        pytest.param(
            {**BASE, "address": "redis.svc:" + "6" * 5000},
            ["is not host:port"],
            id="a port of thousands of digits is refused, not a crash",
        ),
        pytest.param(
            {**BASE, "listLength": "2.5"},
            ["listLength: '2.5' is not a valid integer"],
            id="decimal target",
        ),
        pytest.param(
            {**BASE, "activationListLength": "-1"},
            ["activationListLength: '-1' must be 0 or greater"],
            id="negative activation",
        ),
        pytest.param(
            {**BASE, "databaseIndex": "x"},
            ["databaseIndex: 'x' is not a valid integer"],
            id="bad db",
        ),
        pytest.param(
            {**BASE, "address": "redis.svc"},
            ["address: 'redis.svc' is not host:port"],
            id="no port",
        ),
        pytest.param(
            {**BASE, "enableTLS": "yes"}, ["enableTLS: 'yes' is not a boolean"], id="bad bool"
        ),
        pytest.param(
            {**BASE, "enableTLS": "true", "tls": "enable"},
            ["enableTLS and tls cannot both be set"],
            id="TLS twice",
        ),
        pytest.param(
            {"backend": "redis", "host": "h", "listName": "q"},
            ["missing required parameter port"],
            id="host without port",
        ),
        pytest.param(
            {"backend": "redis", "host": "h", "port": "99999", "listName": "q"},
            ["port: '99999' is not a TCP port"],
            id="port out of range",
        ),
    ],
)
def test_invalid_metadata_names_every_problem(
    metadata: dict[str, str], problems: list[str]
) -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata(metadata)
    for problem in problems:
        assert any(problem in p for p in err.value.problems), err.value.problems
    assert len(err.value.problems) == len(problems)


def test_several_bad_keys_in_one_error_and_no_secret() -> None:
    bad = {
        "backend": "redis",
        "listLength": "x",
        "activationListLength": "y",
        "databaseIndex": "-2",
        "password": "s3cr3t",
    }
    with pytest.raises(MetadataError) as err:
        parse_metadata(bad)
    message = str(err.value)
    for key in ("address", "listName", "listLength", "activationListLength", "databaseIndex"):
        assert key in message
    assert "s3cr3t" not in message


def test_password_is_hidden_from_repr() -> None:
    trigger = parse_metadata({**BASE, "password": "s3cr3t-pw"})
    assert "s3cr3t-pw" not in repr(trigger)
    assert "s3cr3t-pw" not in repr(trigger.connection)


def test_metric_name_is_kedas_normalised() -> None:
    # KEDA v2.20.2's NormalizeString: only / . : % ( ) become -, case and _ stay
    trigger = parse_metadata({**BASE, "listName": "Orders/High.Priority:v2"})
    assert trigger.metric_name() == "redis-Orders-High-Priority-v2"


@pytest.mark.parametrize(("length", "active"), [(0, False), (2, False), (3, True)])
def test_activation_is_strict(length: int, active: bool) -> None:
    trigger = parse_metadata({**BASE, "activationListLength": "2"})
    assert trigger.evaluate(Measurement(length)).active is active
    assert trigger.evaluate(Measurement(length)).value == length


@pytest.mark.parametrize(
    "address", ["user:pw-leak-1@h:6379", "redis://:pw-leak-1@h:6379", "https://u:pw-leak-1@h:1"]
)
def test_addresses_carrying_credentials_are_refused_without_quoting_them(address: str) -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({**BASE, "address": address})
    assert "is not host:port" in str(err.value)
    assert "pw-leak-1" not in str(err.value)
