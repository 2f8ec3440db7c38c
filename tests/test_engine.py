"""Engine: parse memo, metadata limits, rebuild once after a connection error, observer calls."""

from __future__ import annotations

import asyncio

import pytest

from scaler.app import build_engine
from scaler.backends.base import Measurement
from scaler.engine import MAX_METADATA_BYTES, MAX_METADATA_KEYS, Engine
from scaler.errors import (
    BackendAuthError,
    BackendTimeout,
    BackendUnavailable,
    MetadataError,
    ScalerError,
)
from scaler.pool import REBUILD_AFTER
from scaler.settings import Settings
from tests.fakes import FakeBackend, FakeClient

META = {"backend": "fake", "name": "q"}


class Recorder:
    def __init__(self) -> None:
        self.reads: list[tuple[str, str]] = []
        self.values: list[tuple[str, str, float]] = []
        self.failures: list[tuple[str, str, str]] = []

    def backend_read(self, backend: str, reason: str, seconds: float) -> None:
        self.reads.append((backend, reason))

    def measured(self, backend: str, resource: str, measurement: Measurement) -> None:
        self.values.append((backend, resource, measurement.value))

    def coalesced(self, result: str) -> None:
        pass

    def failed(self, backend: str, resource: str, error: ScalerError) -> None:
        self.failures.append((backend, resource, type(error).__name__))


def make_engine(
    fake: FakeBackend,
    observer: Recorder | None = None,
    ttl: float = 0.0,
    rebuild_after: float = 0.0,
) -> Engine:
    return build_engine(
        Settings(cache_ttl=ttl, backend_timeout=0.5),
        observer,
        {"fake": fake},
        retire_after=0.0,
        rebuild_after=rebuild_after,
    )


def test_parse_outcome_is_memoised_including_errors() -> None:
    fake = FakeBackend()
    engine = make_engine(fake)
    assert engine.parse(META) is engine.parse(dict(META))
    bad = {"backend": "fake"}
    with pytest.raises(MetadataError) as first:
        engine.parse(bad)
    with pytest.raises(MetadataError) as second:
        engine.parse(bad)
    assert (
        first.value.problems == second.value.problems == ("fake: missing required parameter name",)
    )


def test_requests_of_different_scaled_objects_share_one_parse_of_their_metadata() -> None:
    # the request memo key holds the ScaledObject's name: 10,000 objects on one queue must not
    # hold 10,000 parsed triggers (found by the stream churn test's memory bound)
    engine = make_engine(FakeBackend())
    first = engine.parse(META, memo_key=b"request of so-1")
    assert engine.parse(dict(META), memo_key=b"request of so-2") is first
    assert engine.parse(META, memo_key=b"request of so-1") is first


def test_oversized_metadata_is_refused_before_parsing() -> None:
    engine = make_engine(FakeBackend())
    many = {f"k{i}": "v" for i in range(MAX_METADATA_KEYS + 1)}
    with pytest.raises(MetadataError, match="keys"):
        engine.parse({**META, **many})
    with pytest.raises(MetadataError, match="larger than"):
        engine.parse({**META, "blob": "x" * (MAX_METADATA_BYTES + 1)})


async def test_connection_error_rebuilds_the_client_once_and_retries() -> None:
    fake = FakeBackend()
    recorder = Recorder()
    engine = make_engine(fake, recorder)
    trigger = engine.parse(META)
    fake.values["q"] = 4
    await engine.measure(trigger)
    first = fake.clients[0]

    failing_once = {"left": 1}
    original = FakeClient.measure

    async def flaky(self: FakeClient, resource: str) -> Measurement:
        if self is first and failing_once["left"]:
            failing_once["left"] -= 1
            raise BackendUnavailable("connection reset")
        return await original(self, resource)

    FakeClient.measure = flaky  # type: ignore[method-assign]
    try:
        assert (await engine.measure(trigger)).value == 4
    finally:
        FakeClient.measure = original  # type: ignore[method-assign]
    await asyncio.sleep(0.01)  # the retired client closes once its grace is over
    assert first.closed
    assert len(fake.clients) == 2
    assert recorder.reads == [("fake", "ok"), ("fake", "ok")]


async def test_persistent_outage_fails_after_one_retry() -> None:
    fake = FakeBackend()
    recorder = Recorder()
    engine = make_engine(fake, recorder)
    fake.values["q"] = BackendUnavailable("refused")
    with pytest.raises(BackendUnavailable):
        await engine.measure(engine.parse(META))
    assert fake.reads["q"] == 2  # the read and the one retry
    assert recorder.reads == [("fake", "unavailable")]
    assert recorder.values == []
    # the resource's failure is reported once, with the resource (the status page's errors)
    [(backend, resource, error)] = recorder.failures
    assert (backend, error) == ("fake", "BackendUnavailable")
    assert resource == engine.parse(META).trigger.resource_label()


async def test_other_errors_are_not_retried() -> None:
    fake = FakeBackend()
    engine = make_engine(fake)
    fake.values["q"] = BackendAuthError("bad password")
    with pytest.raises(BackendAuthError):
        await engine.measure(engine.parse(META))
    assert fake.reads["q"] == 1
    assert len(fake.clients) == 1


async def test_slow_backend_is_a_timeout_reported_to_the_observer() -> None:
    fake = FakeBackend()
    fake.delay = 5
    recorder = Recorder()
    engine = make_engine(fake, recorder)
    with pytest.raises(BackendTimeout, match=r"no answer within 0\.5s"):
        await engine.measure(engine.parse(META))
    await engine.aclose()
    assert recorder.reads == [("fake", "timeout")]
    assert [error for _, _, error in recorder.failures] == ["BackendTimeout"]


async def test_caller_budget_shorter_than_backend_timeout_does_not_cut_others_short() -> None:
    fake = FakeBackend()
    fake.delay = 0.2
    fake.values["q"] = 9
    engine = make_engine(fake)
    trigger = engine.parse(META)
    impatient = asyncio.create_task(engine.measure(trigger, budget=0.05))
    patient = asyncio.create_task(engine.measure(trigger))
    with pytest.raises(BackendTimeout):
        await impatient
    assert (await patient).value == 9
    assert fake.reads["q"] == 1


async def test_aclose_closes_every_client() -> None:
    fake = FakeBackend()
    engine = make_engine(fake)
    await engine.measure(engine.parse(META))
    await engine.measure(engine.parse({**META, "address": "other:2"}))
    assert len(engine.pool) == 2
    await engine.aclose()
    assert all(client.closed for client in fake.clients)
    assert len(engine.pool) == 0


async def test_a_client_built_moments_ago_is_not_rebuilt_while_the_broker_is_down() -> None:
    fake = FakeBackend()
    engine = make_engine(fake, rebuild_after=REBUILD_AFTER)
    fake.values["q"] = BackendUnavailable("refused")
    for _ in range(5):
        with pytest.raises(BackendUnavailable):
            await engine.measure(engine.parse(META))
    assert fake.reads["q"] == 5  # no retry per read: the client is new, the broker is down
    assert len(fake.clients) == 1  # and no client churn through the outage
