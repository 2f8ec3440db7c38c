"""Scenario ``streams``: what watching costs with many known ScaledObjects and open streams.

K known ScaledObjects (GetMetricSpec and GetMetrics once each), S open streams on M lists: the
broker requests per second (per connection identity and per TCP connection) over a window,
the server's CPU, and its RSS.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.harness.ghz import GhzLoad
from bench.harness.scaler_facts import watch_interval
from bench.harness.stats import ratio
from bench.keda_load.servers import Server
from bench.keda_load.windows import snapshot, window
from bench.keda_load.workbench import RedisWorkload, Workbench


async def streams(bench: Workbench) -> dict[str, Any]:
    s = bench.sizes
    out: dict[str, Any] = {
        "known_objects": s.known_objects,
        "streams": s.streams,
        "queues": s.stream_queues,
        "connection_identities": 1,
        "watch_interval_s": watch_interval("redis"),
    }
    async with bench.redis_workload("St", s.known_objects, s.stream_queues) as work:
        for mode in bench.modes:
            async with bench.server("scaler", mode) as server:
                out[mode] = await _watch(bench, server, work)
    if "normal" in out and "naive" in out:
        naive, normal = out["naive"], out["normal"]
        out["ratios"] = {
            "naive_over_normal_broker_per_s": ratio(
                naive["broker_requests_per_s"], normal["broker_requests_per_s"]
            ),
            "naive_over_normal_rss": ratio(naive["rss_mb"], normal["rss_mb"]),
            "naive_over_normal_server_cpu": ratio(
                naive["server_cpu_pct"], normal["server_cpu_pct"]
            ),
        }
    return out


async def _watch(bench: Workbench, server: Server, work: RedisWorkload) -> dict[str, Any]:
    """Make every object known, open the streams, and measure one window of watching."""
    s = bench.sizes
    objects, refs, metrics = work.objects, work.refs, work.metrics
    n = len(objects)
    bench.say(f"  streams {server.mode}: {n} known ScaledObjects, {s.streams} streams")
    await bench.ghz_run(server, GhzLoad("GetMetricSpec", refs, 50, total=n))
    await bench.ghz_run(server, GhzLoad("GetMetrics", metrics, 50, total=n))
    holder = await bench.hold_streams(server, objects[: s.streams])
    try:
        await asyncio.sleep(s.stream_settle)
        before = await snapshot(server, bench.redis, bench.server_cpu)
        await asyncio.sleep(s.stream_window)
        after = await snapshot(server, bench.redis, bench.server_cpu)
        win = window(before, after)
        connections = await bench.redis.scaler_connections()
        memory = server.memory()
    finally:
        held = await holder.close()
    per_s = win["redis"]["per_s"]
    return {
        "broker_requests_per_s": per_s,
        "broker_requests_per_s_per_connection": per_s,
        "tcp_connections": connections,
        "broker_requests_per_s_per_tcp_connection": round(per_s / max(connections, 1), 1),
        "lengths_read_per_s": round(win["redis"]["script_internal_calls"] / 2 / win["seconds"], 1),
        "server_cpu_pct": win["server_cpu_pct"],
        **holder.readiness(),
        "stream_holder": held,
        "window": win,
        **memory,
    }
