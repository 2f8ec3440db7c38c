"""Redis ``OldestAge`` read cost next to the plain length read of the same list.

    python -m bench.redis_age [--elements 1000] [--reads 2000] [--batch 10]

Starts its own ``redis-server`` (``bench.harness.redis_server``) on a free loopback port, so its
command statistics count only this benchmark. Fills a list with ``--elements`` Sidekiq-style
JSON jobs, and a BullMQ-style wait list with as many ids, a hash per id and an active list.
Then reads each way ``--reads`` times, one read after another, through the scaler's pooled Redis
client (what the engine runs on a cache miss): the plain length (KEDA's script), the age of the
JSON list, the age of the id list with its hashes, and that with the processing list. Last, a
watcher batch of ``--batch`` lists each way. Per read: p50 and p99 in milliseconds, and the
EVALSHA calls Redis counted. Prints a table and writes ``bench/results/redis_age.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.harness.broker_counts import redis_command_calls
from bench.harness.paths import RESULTS
from bench.harness.ports import free_port
from bench.harness.redis_server import RedisServer, redis_server_binary
from bench.harness.stats import latency_summary
from scaler.app import build_engine
from scaler.backends.base import Client
from scaler.engine import Engine
from scaler.settings import Settings

AGE = {"mode": "OldestAge", "value": "60"}


def variants(address: str, batch: int) -> dict[str, list[dict[str, str]]]:
    """Each way of reading, as the trigger metadata of the lists it reads (one, or a batch)."""
    base = {"backend": "redis", "address": address}
    sidekiq = {**AGE, "timestampField": "enqueued_at"}
    bull = {**AGE, "timestampField": "timestamp", "timestampHashKey": "bull:q:{}"}
    active = {**bull, "processingListName": "bull:q:active", "activeWhileInFlight": "true"}
    ways = {
        "ListLength (KEDA's script)": {"listName": "queue:default"},
        "OldestAge, JSON element": {"listName": "queue:default", **sidekiq},
        "OldestAge, id + hash": {"listName": "bull:q:wait", **bull},
        "OldestAge, id + hash + processing list": {"listName": "bull:q:wait", **active},
    }
    reads = {name: [{**base, **extra}] for name, extra in ways.items()}
    reads[f"batch of {batch}: ListLength"] = [
        {**base, "listName": f"queue:{i}"} for i in range(batch)
    ]
    reads[f"batch of {batch}: OldestAge, id + hash + processing list"] = [
        {
            **base,
            **active,
            "listName": f"bull:q{i}:wait",
            "timestampHashKey": f"bull:q{i}:{{}}",
            "processingListName": f"bull:q{i}:active",
        }
        for i in range(batch)
    ]
    return reads


async def fill(client: aioredis.Redis, elements: int, batch: int) -> None:
    seconds, micros = await client.time()
    now = seconds + micros / 1_000_000
    jobs = [
        json.dumps({"class": "HardJob", "jid": f"{i:024x}", "args": [i], "enqueued_at": now - i})
        for i in range(elements)
    ]
    await client.lpush("queue:default", *jobs)
    for i in range(batch):
        await client.lpush(f"queue:{i}", *range(elements))
    pipe = client.pipeline(transaction=False)
    for i in range(elements):
        stamp = int((now - i) * 1000)
        pipe.hset(f"bull:q:{i}", mapping={"name": "send", "data": "{}", "timestamp": stamp})
        for q in range(batch):
            pipe.hset(f"bull:q{q}:{i}", mapping={"timestamp": stamp})
    await pipe.execute()
    for queue in ["q", *(f"q{i}" for i in range(batch))]:
        await client.lpush(f"bull:{queue}:wait", *range(elements))
        await client.lpush(f"bull:{queue}:active", *range(3))


async def time_reads(
    read: Callable[[], Awaitable[Any]], reads: int, counter: aioredis.Redis
) -> dict[str, Any]:
    for _ in range(min(100, reads)):  # loads the script, opens the connection
        await read()
    before = await redis_command_calls(counter)
    durations = []
    for _ in range(reads):
        start = time.perf_counter()
        await read()
        durations.append(time.perf_counter() - start)
    after = await redis_command_calls(counter)
    summary: dict[str, Any] = latency_summary(durations)
    summary["evalsha_per_read"] = (after.get("evalsha", 0) - before.get("evalsha", 0)) / reads
    summary["eval_per_read"] = (after.get("eval", 0) - before.get("eval", 0)) / reads
    return summary


def reader(engine: Engine, metadatas: list[dict[str, str]]) -> Callable[[], Awaitable[Any]]:
    parsed = [engine.parse(m) for m in metadatas]
    client: Client[Any] = engine.pool.get(parsed[0].key.connection)
    resources = [p.key.resource for p in parsed]
    if len(resources) == 1:
        return lambda: client.measure(resources[0])
    return lambda: client.measure_many(resources)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("redis-server is not on PATH; `scripts/brokers.sh start` installs it")
    server = RedisServer(binary, free_port(), workdir)
    await server.start()
    counter = aioredis.Redis(host="127.0.0.1", port=server.port)
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=5.0))
    try:
        await fill(counter, args.elements, args.batch)
        info = await counter.info("server")
        results = {
            name: await time_reads(reader(engine, metadatas), args.reads, counter)
            for name, metadatas in variants(server.address, args.batch).items()
        }
    finally:
        await engine.aclose()
        await counter.aclose()
        server.terminate()
    return {"redis": info.get("redis_version"), "results": results}


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"Linux {platform.release()}, Python {platform.python_version()}"
    return f"{model}, {os.cpu_count()} cores, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kqs-redis-age-") as workdir:
        report = asyncio.run(run(args, Path(workdir)))
    where = f"{machine()}, redis-server {report['redis']}"
    print(f"Redis reads, one list of {args.elements} elements, {args.reads} reads each; {where}")
    print(f"  {'read':<58} {'p50 ms':>8} {'p99 ms':>8} {'EVALSHA/read':>13}")
    for name, r in report["results"].items():
        print(
            f"  {name:<58} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['evalsha_per_read']:>13.2f}"
        )
    out = RESULTS / "redis_age.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "machine": where, **report}, indent=2))
    print(f"  written to {out}")


if __name__ == "__main__":
    main()
