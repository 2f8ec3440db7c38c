"""The integration fixtures themselves: the shared Redis answers, a test-owned one restarts."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.integration.conftest import KeyFactory, MetadataFactory, OwnRedis

pytestmark = pytest.mark.integration


async def test_shared_redis_answers_and_keys_are_unique(
    redis_client: aioredis.Redis,
    unique_key: KeyFactory,
    redis_metadata: MetadataFactory,
    redis_url: str,
) -> None:
    assert await redis_client.ping()
    first, second = unique_key(), unique_key("kqs-infra")
    assert first != second
    assert second.startswith("kqs-infra-")
    await redis_client.rpush(first, "a", "b")
    assert await redis_client.llen(first) == 2
    metadata = redis_metadata(first, listLength="3")
    assert metadata["backend"] == "redis"
    assert metadata["listName"] == first
    assert metadata["listLength"] == "3"
    assert redis_url.startswith("redis://")
    assert metadata["address"] in redis_url


async def test_own_redis_stops_and_restarts_on_the_same_port(own_redis: OwnRedis) -> None:
    port, first_pid = own_redis.port, own_redis.pid
    assert own_redis.address == f"127.0.0.1:{port}"
    # no retries: a refused connection must show at once, not after redis-py's backoff
    client = aioredis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        assert await client.ping()
        await own_redis.stop()
        assert not own_redis.running
        with pytest.raises(rexc.ConnectionError):
            await client.ping()
        await own_redis.start()
        assert own_redis.port == port
        assert own_redis.pid != first_pid
        assert await client.ping()
    finally:
        await client.aclose()
