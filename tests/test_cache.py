"""Coalescer: single flight, TTL, errors never cached, cancellation never spreads."""

from __future__ import annotations

import asyncio

import pytest

from scaler.cache import Coalescer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting_fetch(result: object = 42, delay: float = 0.0):
    calls = {"n": 0}

    async def fetch() -> object:
        calls["n"] += 1
        await asyncio.sleep(delay)
        if isinstance(result, BaseException):
            raise result
        return result

    return fetch, calls


async def test_concurrent_callers_share_one_fetch() -> None:
    outcomes: list[str] = []
    cache: Coalescer[str, object] = Coalescer(1.0, on_outcome=outcomes.append)
    fetch, calls = counting_fetch(delay=0.05)
    results = await asyncio.gather(*(cache.get("k", fetch) for _ in range(200)))
    assert results == [42] * 200
    assert calls["n"] == 1
    assert outcomes.count("miss") == 1
    assert outcomes.count("shared") == 199


async def test_result_reused_within_ttl_and_refetched_after() -> None:
    clock = Clock()
    cache: Coalescer[str, object] = Coalescer(1.0, clock=clock)
    fetch, calls = counting_fetch()
    await cache.get("k", fetch)
    clock.now += 0.9
    await cache.get("k", fetch)
    assert calls["n"] == 1
    clock.now += 0.2
    await cache.get("k", fetch)
    assert calls["n"] == 2


async def test_different_keys_do_not_share() -> None:
    cache: Coalescer[str, object] = Coalescer(1.0)
    fetch, calls = counting_fetch()
    await asyncio.gather(cache.get("a", fetch), cache.get("b", fetch))
    assert calls["n"] == 2


async def test_errors_reach_every_waiter_and_are_never_cached() -> None:
    cache: Coalescer[str, object] = Coalescer(10.0)
    fetch, calls = counting_fetch(ValueError("broker down"), delay=0.02)
    results = await asyncio.gather(
        *(cache.get("k", fetch) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert calls["n"] == 1
    with pytest.raises(ValueError, match="broker down"):
        await cache.get("k", fetch)
    assert calls["n"] == 2
    assert cache.fresh("k") is None  # the failure was not stored


async def test_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    cache: Coalescer[str, object] = Coalescer(1.0)
    fetch, calls = counting_fetch(delay=0.1)
    first = asyncio.create_task(cache.get("k", fetch))
    second = asyncio.create_task(cache.get("k", fetch))
    await asyncio.sleep(0.02)
    first.cancel()
    assert await second == 42
    assert first.cancelled()
    assert calls["n"] == 1
    assert cache.fresh("k") == 42  # the shared fetch finished and stored its value


async def test_failure_with_every_waiter_cancelled_is_not_reported_as_unretrieved() -> None:
    # filterwarnings=error and asyncio's "exception was never retrieved" would fail this test
    cache: Coalescer[str, object] = Coalescer(1.0)
    fetch, _ = counting_fetch(ValueError("late failure"), delay=0.05)
    waiter = asyncio.create_task(cache.get("k", fetch))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0.1)
    assert cache.inflight == 0


async def test_aclose_cancels_fetches_in_flight() -> None:
    cache: Coalescer[str, object] = Coalescer(1.0)
    fetch, _ = counting_fetch(delay=10)
    waiter = asyncio.create_task(cache.get("k", fetch))
    await asyncio.sleep(0.01)
    await cache.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cache.inflight == 0


async def test_naive_mode_shares_nothing() -> None:
    cache: Coalescer[str, object] = Coalescer(10.0, share=False)
    fetch, calls = counting_fetch(delay=0.01)
    await asyncio.gather(*(cache.get("k", fetch) for _ in range(5)))
    await cache.get("k", fetch)
    assert calls["n"] == 6
