"""Many keys per trigger, without Redis: what ``listName``/``stream`` name with ``useGlob`` or a
comma list (table-driven, all six backends), which keys are refused, what the resource (the
coalescing key) holds, how ``operation`` combines the per-key values, and how a connection keeps
the keys a glob matched (:class:`Globs`, against a runner that counts its SCAN passes)."""

from __future__ import annotations

import asyncio

import pytest

from scaler.backends import build_backends
from scaler.backends.base import OLDEST_AGE, Evaluation, Measurement
from scaler.backends.redis import RedisList, RedisStream, RedisTrigger, StreamTrigger
from scaler.backends.redis.globs import Globs
from scaler.backends.redis.keyset import KeySet, gather
from scaler.errors import MetadataError, TargetNotFound, UnsupportedResource

BACKENDS = build_backends(1.0)
LISTS = ("redis", "redis-cluster", "redis-sentinel")
STREAMS = ("redis-streams", "redis-cluster-streams", "redis-sentinel-streams")
ADDRESS = {"address": "redis:6379"}


def _metadata(backend: str, name: str, **extra: str) -> dict[str, str]:
    key = "stream" if "streams" in backend else "listName"
    meta = {"backend": backend, **ADDRESS, key: name, **extra}
    if "sentinel" in backend:
        meta["sentinelMaster"] = "mymaster"
    return meta


def _parse(backend: str, name: str, **extra: str) -> RedisTrigger | StreamTrigger:
    trigger = BACKENDS[backend].parse(_metadata(backend, name, **extra))
    assert isinstance(trigger, RedisTrigger | StreamTrigger)
    return trigger


@pytest.mark.parametrize("backend", LISTS + STREAMS)
@pytest.mark.parametrize(
    ("name", "extra", "key", "many"),
    [
        pytest.param("jobs", {}, "jobs", None, id="one key: KEDA's"),
        pytest.param("a,b", {}, "a,b", KeySet(("a", "b")), id="a comma list"),
        pytest.param(" a , b ,a,,c", {}, "a,b,c", KeySet(("a", "b", "c")), id="trimmed, once"),
        pytest.param("a,a", {}, "a", None, id="one key twice is one key"),
        pytest.param(
            "a,b", {"maxKeys": "2"}, "a,b", KeySet(("a", "b")), id="maxKeys never splits a list"
        ),
        pytest.param(
            "bull:*:wait",
            {"useGlob": "true"},
            "bull:*:wait",
            KeySet((), "bull:*:wait"),
            id="a glob, defaults: maxKeys 1000, refresh 30 s",
        ),
        pytest.param(
            "a,b*",
            {"useGlob": "true", "maxKeys": "5", "globRefreshSeconds": "1.5"},
            "a,b*",
            KeySet((), "a,b*", 5, 1.5),
            id="a glob is one pattern: a comma is its own",
        ),
    ],
)
def test_what_the_key_names(
    backend: str, name: str, extra: dict[str, str], key: str, many: KeySet | None
) -> None:
    trigger = _parse(backend, name, **extra)
    resource = trigger.resource
    assert (getattr(resource, "stream", None) or getattr(resource, "key", None)) == key
    assert resource.many == many
    assert trigger.operation == "sum"


@pytest.mark.parametrize("backend", LISTS + STREAMS)
@pytest.mark.parametrize(
    ("name", "extra", "problem"),
    [
        (",", {}, "names no key"),
        ("a,b,c", {"maxKeys": "2"}, "names 3 keys, more than maxKeys (2)"),
        ("a*", {"globRefreshSeconds": "5"}, "globRefreshSeconds applies only with useGlob: true"),
        ("a*", {"useGlob": "true", "globRefreshSeconds": "0"}, "must be greater than 0"),
        ("a*", {"useGlob": "true", "maxKeys": "0"}, "maxKeys: '0' must be greater than 0"),
        ("a*", {"useGlob": "yes"}, "useGlob: 'yes' is not a boolean"),
        ("a,b", {"operation": "min"}, "operation: 'min' must be one of [sum, max, avg]"),
    ],
)
def test_refused(backend: str, name: str, extra: dict[str, str], problem: str) -> None:
    with pytest.raises(MetadataError) as err:
        _parse(backend, name, **extra)
    assert problem in str(err.value)


@pytest.mark.parametrize("backend", LISTS)
def test_a_processing_list_belongs_to_one_list(backend: str) -> None:
    for extra in ({"useGlob": "true"}, {}):
        with pytest.raises(MetadataError) as err:
            _parse(backend, "q:*:wait,x", processingListName="q:active", **extra)
        assert "cannot be combined with several keys" in str(err.value)


AGES = [
    ("redis", {"mode": "OldestAge", "value": "60", "timestampField": "t"}),
    ("redis-streams", {"consumerGroup": "g", "mode": "OldestUndeliveredAge", "value": "60"}),
    ("redis-sentinel-streams", {"consumerGroup": "g", "mode": "OldestPendingAge", "value": "9"}),
]


@pytest.mark.parametrize(("backend", "age"), AGES)
def test_an_age_defaults_to_max_unless_operation_is_given(
    backend: str, age: dict[str, str]
) -> None:
    assert _parse(backend, "a,b", **age).operation == "max"
    assert _parse(backend, "a,b", operation="avg", **age).operation == "avg"
    assert _parse(backend, "a,b", operation="sum", **age).operation == "sum"


@pytest.mark.parametrize("backend", LISTS + STREAMS)
def test_the_resource_holds_what_is_read_never_thresholds_or_operation(backend: str) -> None:
    glob = {"useGlob": "true"}
    target = "streamLength" if "streams" in backend else "listLength"
    threshold = "activationLagCount" if "streams" in backend else "activationListLength"
    shared = {
        _parse(backend, "q:*", **glob).resource,
        _parse(backend, "q:*", operation="max", **{target: "9", threshold: "3"}, **glob).resource,
        _parse(backend, "q:*", operation="avg", **glob).resource,
    }
    assert len(shared) == 1
    apart = {
        _parse(backend, "q:*", **glob).resource,
        _parse(backend, "q:*", maxKeys="10", **glob).resource,
        _parse(backend, "q:*", globRefreshSeconds="5", **glob).resource,
        _parse(backend, "q:*").resource,  # the key literally named q:*
    }
    assert len(apart) == 4


@pytest.mark.parametrize(
    ("metadata", "name"),
    [
        (_metadata("redis", "bull:*:wait", useGlob="true"), "redis-bull-*-wait"),
        (_metadata("redis-cluster", "a, b", operation="max"), "redis-a, b"),
        (_metadata("redis-streams", "orders.*", useGlob="true"), "redis-streams-orders-*"),
    ],
)
def test_the_metric_name_is_kedas_form_of_the_key_as_given(
    metadata: dict[str, str], name: str
) -> None:
    trigger = BACKENDS[metadata["backend"]].parse(metadata)
    assert trigger.metric_name() == name
    # an HPA metric name is a path segment: anything but `/`, `%`, `.` and `..`
    assert not {"/", "%"} & set(name)


def _items(*values: float, **facts: float) -> Measurement:
    parts = [
        (f"k{i}", Measurement(v, {"type": "list", **{f: facts[f] * (i + 1) for f in facts}}))
        for i, v in enumerate(values)
    ]
    measured = gather(parts)
    assert isinstance(measured, Measurement)
    return measured


@pytest.mark.parametrize(
    ("operation", "expected", "active"),
    [("sum", 12.0, True), ("max", 7.0, True), ("avg", 4.0, False)],
)
def test_operation_combines_the_keys_and_activation_applies_to_that(
    operation: str, expected: float, active: bool
) -> None:
    trigger = _parse("redis", "a,b,c", operation=operation, activationListLength="4")
    evaluation = trigger.evaluate(_items(2, 3, 7))
    assert (evaluation.value, evaluation.active) == (expected, active)


def test_the_oldest_age_of_several_lists() -> None:
    trigger = _parse("redis", "a,b,c", mode="OldestAge", value="60", timestampField="t")
    measured = _items(1, 1, 1, oldest_age_seconds=10.0)  # ages 10, 20, 30
    assert trigger.evaluate(measured).value == 30
    assert measured.facts[OLDEST_AGE] == 30  # the gauge: the oldest, whatever the operation
    assert _parse("redis", "a,b", operation="avg", **AGES[0][1]).evaluate(measured).value == 20


def test_no_key_matched_is_0_for_lengths_and_ages() -> None:
    nothing = Measurement(0.0, {"keys": 0.0})
    assert _parse("redis", "q:*", useGlob="true").evaluate(nothing).value == 0
    age = _parse("redis", "q:*", useGlob="true", **AGES[0][1])
    assert (age.evaluate(nothing).value, age.evaluate(nothing).active) == (0, False)


def test_the_pending_entries_of_several_streams_and_their_work_in_flight() -> None:
    def stream(pending: float) -> Measurement:
        facts = {"stream_exists": 1.0, "group_exists": 1.0, "pending": pending}
        return Measurement(5.0, {**facts, "in_flight": pending, "xlen": 5.0})

    measured = gather([("s1", stream(2)), ("s2", stream(0)), ("s3", stream(4))])
    assert isinstance(measured, Measurement)
    assert measured.facts["in_flight"] == 6
    pending = _parse("redis-streams", "s*", useGlob="true", consumerGroup="g")
    assert pending.evaluate(measured).value == 6
    age = _parse(
        "redis-streams",
        "s1,s2,s3",
        consumerGroup="g",
        mode="OldestPendingAge",
        value="5",
        activationValue="100",
        activeWhileInFlight="true",
    )
    measured = gather(
        [
            (name, Measurement(1.0, {**stream(n).facts, "oldest_pending_age_seconds": n}))
            for name, n in (("s1", 0), ("s2", 3))
        ]
    )
    assert isinstance(measured, Measurement)
    assert age.evaluate(measured) == Evaluation(3.0, True)  # below 100 s, but in flight


def test_one_key_that_fails_fails_the_trigger() -> None:
    failed = UnsupportedResource("key 'b' is a string")
    assert gather([("a", Measurement(3.0)), ("b", failed), ("c", TargetNotFound("c"))]) is failed


def test_items_name_each_key_beside_its_value_and_facts() -> None:
    measured = _items(2, 3)
    assert measured.value == 5
    assert measured.items == (
        {"key": "k0", "value": 2.0, "type": "list"},
        {"key": "k1", "value": 3.0, "type": "list"},
    )
    assert measured.facts == {"keys": 2.0}


def test_a_part_is_the_same_read_of_one_key() -> None:
    many = KeySet((), "q:*")
    assert RedisList("q:*", None, None, many).part("q:1") == RedisList("q:1")
    assert RedisStream("o:*", "g", "pending", many).part("o:1") == RedisStream(
        "o:1", "g", "pending"
    )


class CountingRunner:
    """A runner whose SCAN finds ``self.keys`` and counts its passes."""

    where = "redis test"

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.passes = 0
        self.fail: Exception | None = None

    async def scan(self, pattern: str, limit: int) -> tuple[list[str], int]:
        self.passes += 1
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        return self.keys[: limit + 1], 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_resolution_is_kept_for_its_refresh_and_shared() -> None:
    runner, clock = CountingRunner(["b", "a"]), Clock()
    globs = Globs(runner, clock)  # type: ignore[arg-type]
    keys = KeySet((), "*", refresh=1.0)
    first, second = await asyncio.gather(globs.keys(keys), globs.keys(keys))
    assert first == (("a", "b"), 2)  # sorted; the pass's SCAN calls counted once
    assert second == (("a", "b"), 0)
    assert runner.passes == 1
    runner.keys = ["a", "b", "c"]
    clock.now += 0.99
    assert await globs.keys(keys) == (("a", "b"), 0)  # kept: the new key not yet
    clock.now += 0.01
    assert await globs.keys(keys) == (("a", "b", "c"), 2)
    assert runner.passes == 2


async def test_too_many_matches_is_kept_and_a_failed_scan_is_not() -> None:
    runner, clock = CountingRunner([f"k{i}" for i in range(5)]), Clock()
    globs = Globs(runner, clock)  # type: ignore[arg-type]
    bounded = KeySet((), "k*", max_keys=3)
    for _ in range(2):
        with pytest.raises(UnsupportedResource, match=r"at least 4 keys, more than maxKeys \(3\)"):
            await globs.keys(bounded)
    assert runner.passes == 1
    runner.fail = UnsupportedResource("down")
    other = KeySet((), "x*")
    for _ in range(2):
        with pytest.raises(UnsupportedResource, match="down"):
            await globs.keys(other)
    assert runner.passes == 3


async def test_a_cancelled_ask_leaves_the_pass_to_the_next() -> None:
    runner, clock = CountingRunner(["a"]), Clock()
    globs = Globs(runner, clock)  # type: ignore[arg-type]
    keys = KeySet((), "*")
    ask = asyncio.ensure_future(globs.keys(keys))
    await asyncio.sleep(0)
    ask.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ask
    assert await globs.keys(keys) == (("a",), 0)  # the pass went on, and is kept
    assert runner.passes == 1
    globs.aclose()
