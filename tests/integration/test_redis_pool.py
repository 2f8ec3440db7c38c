"""The Redis client's pool: a burst opens connections, and they are closed again once idle."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from scaler.backends.redis import RedisBackend, RedisList, idle_pool

pytestmark = pytest.mark.integration


async def _scaler_connections(client: aioredis.Redis) -> int:
    return sum(1 for c in await client.client_list() if c.get("name") == "keda-queue-scaler")


async def test_connections_opened_by_a_burst_are_closed_once_idle(own_redis, monkeypatch) -> None:
    monkeypatch.setattr(idle_pool, "_IDLE_CLOSE", 0.3)
    admin = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    backend = RedisBackend(timeout=2)
    client = backend.connect(backend.parse(own_redis.metadata("k")).connection)
    try:
        await client.measure(RedisList("k"))
        assert await _scaler_connections(admin) == 1
        # a stalled server (as under a pause) makes every read wait at once: one socket each
        await admin.client_pause(300, all=True)
        burst = await asyncio.gather(*(client.measure(RedisList(f"k{i}")) for i in range(8)))
        assert [m.value for m in burst] == [0.0] * 8
        assert await _scaler_connections(admin) == 8
        await asyncio.sleep(0.4)
        await client.measure(RedisList("k"))  # a release closes what idled past the limit
        assert await _scaler_connections(admin) == 1
        burst = await asyncio.gather(*(client.measure(RedisList(f"k{i}")) for i in range(3)))
        assert [m.value for m in burst] == [0.0] * 3  # closed connections reconnect on use
    finally:
        await client.aclose()
        await admin.aclose()
