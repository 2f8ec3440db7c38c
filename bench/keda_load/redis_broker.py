"""The Redis the benchmark measures: a private ``redis-server`` unless ``--redis-url`` names one.

The private server runs pinned with the load, so its command statistics count only the scaler
and the benchmark; this module fills and empties the benchmark's lists and reads those counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from bench.harness.broker_counts import redis_clients_named, redis_command_calls
from bench.harness.ports import free_port
from bench.harness.redis_server import RedisServer, redis_server_binary
from bench.harness.scaler_facts import REDIS_CLIENT_NAME


class RedisBroker:
    """The measured Redis and a client of it."""

    def __init__(self, url: str | None, workdir: Path, cpu: int | None) -> None:
        self.external_url = url
        self.workdir = workdir
        self.cpu = cpu
        self.server: RedisServer | None = None
        self.client: aioredis.Redis | None = None
        self.version = ""

    @property
    def address(self) -> str:
        if self.external_url:
            url = httpx.URL(self.external_url)
            return f"{url.host}:{url.port or 6379}"
        assert self.server is not None
        return self.server.address

    async def start(self) -> None:
        """Start the private server (or reach the given one) and read its version."""
        if self.external_url:
            self.client = aioredis.Redis.from_url(self.external_url)
        else:
            binary = redis_server_binary()
            if binary is None:
                raise RuntimeError("redis-server is not installed (make brokers installs it)")
            self.server = RedisServer(binary, free_port(), self.workdir / "redis", cpu=self.cpu)
            await self.server.start()
            self.client = aioredis.Redis(host="127.0.0.1", port=self.server.port)
        deadline = time.monotonic() + 15
        while True:
            try:
                await self.redis.ping()
                break
            except (OSError, aioredis.ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Redis at {self.address} does not answer") from None
                await asyncio.sleep(0.1)
        self.version = str((await self.redis.info("server")).get("redis_version", "?"))

    @property
    def redis(self) -> aioredis.Redis:
        assert self.client is not None
        return self.client

    async def calls(self) -> dict[str, int]:
        """Calls per command so far (``INFO commandstats``)."""
        return await redis_command_calls(self.redis)

    async def scaler_connections(self) -> int:
        """The scaler's connections open now."""
        return await redis_clients_named(self.redis, REDIS_CLIENT_NAME)

    async def fill(self, queues: Sequence[str]) -> None:
        """Queue ``j`` gets ``j`` items (the first stays empty: inactive, missing key is 0)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for j, queue in enumerate(queues):
                pipe.delete(queue)
                if j:
                    pipe.rpush(queue, *(["job"] * j))
            await pipe.execute()

    async def drop(self, keys: Sequence[str]) -> None:
        if keys and self.client is not None:
            await self.redis.delete(*keys)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.server is not None:
            await self.server.stop()
