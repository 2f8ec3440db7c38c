"""BackendPool: one client per identity, invalidation, idle eviction."""

from __future__ import annotations

import asyncio

from scaler.keys import ConnectionKey
from scaler.pool import BackendPool
from tests.fakes import FakeBackend, FakeConnection


def key(address: str, password: str | None = None) -> ConnectionKey:
    return ConnectionKey("fake", FakeConnection(address, password))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_client_per_connection_identity() -> None:
    fake = FakeBackend()
    pool = BackendPool({"fake": fake})
    a = pool.get(key("a:1"))
    assert pool.get(key("a:1")) is a
    assert pool.get(key("a:1", password="other")) is not a  # other credentials
    assert pool.get(key("b:1")) is not a
    assert len(pool) == 3


async def test_invalidate_replaces_the_client_and_closes_it_after_its_grace() -> None:
    fake = FakeBackend()
    pool = BackendPool({"fake": fake}, retire_after=0.05)
    old = pool.get(key("a:1"))
    await pool.invalidate(key("a:1"), old)
    new = pool.get(key("a:1"))
    assert not old.closed  # type: ignore[attr-defined]  # reads still using it may finish
    await asyncio.sleep(0.1)
    assert old.closed  # type: ignore[attr-defined]
    assert new is not old
    # a late invalidation of the old client must not drop its replacement
    await pool.invalidate(key("a:1"), old)
    assert pool.get(key("a:1")) is new


async def test_idle_clients_are_evicted() -> None:
    clock = Clock()
    fake = FakeBackend()
    pool = BackendPool({"fake": fake}, idle_timeout=60, clock=clock)
    idle = pool.get(key("idle:1"))
    clock.now = 50
    busy = pool.get(key("busy:1"))
    clock.now = 100
    pool.get(key("busy:1"))
    assert await pool.evict_idle() == 1
    assert idle.closed  # type: ignore[attr-defined]
    assert not busy.closed  # type: ignore[attr-defined]
    assert len(pool) == 1


async def test_shutdown_closes_retiring_clients_at_once() -> None:
    fake = FakeBackend()
    pool = BackendPool({"fake": fake}, retire_after=60)
    old = pool.get(key("a:1"))
    await pool.invalidate(key("a:1"), old)
    await pool.aclose_all()
    assert old.closed  # type: ignore[attr-defined]
