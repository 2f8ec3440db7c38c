"""The history behind persistent lag: in memory, and a shared store that may fail (a fake here;
tests/integration/test_replicas.py runs the real Redis one)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence

import pytest

from scaler.app import build_history
from scaler.backends.base import state_key
from scaler.backends.kafka.trigger import KafkaConnection
from scaler.settings import Settings
from scaler.state import FallbackHistory, MemoryHistory
from scaler.state_redis import RedisHistory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Store:
    """A shared store that answers a fixed age per key, or fails."""

    def __init__(self) -> None:
        self.ages: dict[str, float] = {}
        self.failing = False
        self.hints: list[list[float]] = []

    async def unchanged_for(
        self, facts: Sequence[tuple[str, Hashable]], hints: Sequence[float]
    ) -> list[float]:
        self.hints.append(list(hints))
        if self.failing:
            raise ConnectionRefusedError("refused")
        return [self.ages.get(key, 0.0) for key, _ in facts]

    async def aclose(self) -> None:
        pass


class Observer:
    def __init__(self) -> None:
        self.events: list[tuple[bool, bool]] = []

    def state_store(self, up: bool, error: bool) -> None:
        self.events.append((up, error))


def test_state_key_is_a_stable_digest_without_secrets() -> None:
    with_password = KafkaConnection(("k1:9092",), "plain", "user", "hunter2-secret")
    other_password = KafkaConnection(("k1:9092",), "plain", "user", "another")
    key = state_key(with_password, "kafka", "orders", "t", 0)
    assert len(key) == 64
    assert int(key, 16) >= 0
    # the password is no part of the identity: the same facts whatever the credential
    assert key == state_key(other_password, "kafka", "orders", "t", 0)
    assert key != state_key(with_password, "kafka", "orders", "t", 1)
    assert key != state_key(KafkaConnection(("k2:9092",)), "kafka", "orders", "t", 0)
    assert "hunter2" not in repr(with_password)


async def test_memory_counts_from_the_first_sighting() -> None:
    clock = Clock()
    memory = MemoryHistory(clock=clock)
    assert await memory.unchanged_for([("a", 1), ("b", 5)]) == [0.0, 0.0]
    clock.now += 7
    assert await memory.unchanged_for([("a", 1), ("b", 6)]) == [7.0, 0.0]
    assert memory.known([("a", 1), ("a", 2), ("c", 1)]) == [7.0, 0, 0]


async def test_shared_answers_are_written_through_and_memory_answers_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store, observer = Store(), Observer()
    memory = MemoryHistory(clock=clock)
    history = FallbackHistory(store, memory, observer, retry=2.0, clock=clock)
    store.ages = {"a": 50.0}
    assert await history.unchanged_for([("a", 1)]) == [50.0]  # another replica saw it first
    assert observer.events == [(True, False)]
    store.failing = True
    clock.now += 10
    with caplog.at_level(logging.WARNING, "scaler.state"):
        # memory continues from the last shared fact, never 0 and never an error
        assert await history.unchanged_for([("a", 1)]) == [60.0]
        clock.now += 1  # within the retry delay: memory alone, the store is not asked
        assert await history.unchanged_for([("a", 1)]) == [61.0]
        clock.now += 2
        assert await history.unchanged_for([("a", 1)]) == [63.0]
    assert len(store.hints) == 3  # the first answer, then one attempt per retry delay
    assert observer.events[1:] == [(False, True), (False, True)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()
    store.failing = False
    store.ages = {}  # a store restarted empty: the hint is this replica's memory
    clock.now += 2
    assert await history.unchanged_for([("a", 1)]) == [0.0]
    assert store.hints[-1] == [65.0]
    assert observer.events[-1] == (True, False)
    assert not history.degraded


async def test_a_slow_store_answers_from_memory_within_the_budget() -> None:
    class Slow(Store):
        async def unchanged_for(self, facts, hints):
            import asyncio

            await asyncio.sleep(5)
            return []

    history = FallbackHistory(Slow(), MemoryHistory(), budget=0.05)
    assert await history.unchanged_for([("a", 1)]) == [0.0]
    assert history.degraded


def test_the_state_url_password_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    url = "rediss://kqs:s3cret-pw@store.example:6380/2"
    settings = Settings.load({"state_url": url})
    assert "s3cret" not in repr(settings)
    with caplog.at_level(logging.INFO):
        history = build_history(settings)
    assert isinstance(history, FallbackHistory)
    assert isinstance(history.store, RedisHistory)
    assert "s3cret" not in repr(history.store)
    assert "store.example" in repr(history.store)
    assert "s3cret" not in caplog.text
    assert "store.example" in caplog.text
    with pytest.raises(Exception, match="SCALER_STATE_URL") as err:
        Settings.load(environ={"SCALER_STATE_URL": "http://kqs:s3cret-pw@h"})
    assert "s3cret" not in str(err.value)


def test_several_replicas_without_a_store_warn_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert isinstance(build_history(Settings(replicas=3)), MemoryHistory)
    assert "3 replicas without --state-url" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_history(Settings())
    assert not caplog.records
