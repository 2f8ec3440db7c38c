"""The brokers' own counts of what they served: Redis command statistics, RabbitMQ's counters.

:func:`redis_requests` turns two ``INFO commandstats`` snapshots into the requests the scaler
sent, leaving out the commands its Lua scripts run and the benchmark's own commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import redis.asyncio as aioredis

from bench.harness.prometheus import scrape, series_sum

#: commands the scaler's Lua length scripts call; Redis counts them in commandstats as well
SCRIPT_INTERNAL_COMMANDS = frozenset(
    {"type", "llen", "scard", "zcard", "hlen", "lindex", "hget", "time"}
)
#: commands the benchmark itself sends to its Redis (preparation, counting, activations)
BENCH_COMMANDS = frozenset(
    {
        "info",
        "config|resetstat",
        "config|get",
        "client|list",
        "client|setname",
        "lpush",
        "rpush",
        "del",
        "unlink",
        "ping",
        "hello",
        "flushdb",
        "scan",
        "exists",
    }
)


def redis_requests(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, Any]:
    """Requests sent by clients other than the benchmark between two commandstats snapshots.

    :param before: calls per command (``cmdstat_`` prefix removed), from :func:`command_calls`
    :returns: ``requests`` (top-level commands of the scaler) and ``by_command``, plus the
        script-internal calls for reference
    """
    delta = {cmd: after.get(cmd, 0) - before.get(cmd, 0) for cmd in after}
    delta = {cmd: n for cmd, n in delta.items() if n > 0}
    scaler = {
        cmd: n
        for cmd, n in delta.items()
        if cmd not in SCRIPT_INTERNAL_COMMANDS and cmd not in BENCH_COMMANDS
    }
    return {
        "requests": sum(scaler.values()),
        "by_command": dict(sorted(scaler.items())),
        "script_internal_calls": sum(
            n for cmd, n in delta.items() if cmd in SCRIPT_INTERNAL_COMMANDS
        ),
    }


def command_calls(commandstats: Mapping[str, Any]) -> dict[str, int]:
    """Calls per command from redis-py's ``info("commandstats")`` (``cmdstat_x`` -> ``x``)."""
    calls: dict[str, int] = {}
    for key, value in commandstats.items():
        if key.startswith("cmdstat_") and isinstance(value, Mapping):
            calls[key.removeprefix("cmdstat_")] = int(value.get("calls", 0))
    return calls


async def redis_command_calls(client: aioredis.Redis) -> dict[str, int]:
    """Calls per command the Redis server has counted so far."""
    return command_calls(await client.info("commandstats"))


async def redis_clients_named(client: aioredis.Redis, name: str) -> int:
    """Connections open to the Redis server whose client name is ``name``."""
    return sum(1 for c in await client.client_list() if c.get("name") == name)


async def rabbitmq_counters(url: str, http: httpx.AsyncClient) -> dict[str, float]:
    """Channel and connection totals from RabbitMQ's Prometheus endpoint (whole node)."""
    samples = await scrape(http, url)
    return {
        "channels_opened": series_sum(samples, "rabbitmq_channels_opened_total"),
        "connections_opened": series_sum(samples, "rabbitmq_connections_opened_total"),
    }
