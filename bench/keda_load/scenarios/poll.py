"""Scenario ``poll``: one KEDA poll round, one HPA round, then the sustained pattern with streams.

N ScaledObjects on M Redis lists; broker requests per round from Redis' command statistics,
counted per queue per coalescing window (the cache TTL). The sustained run compresses KEDA's
interval (every object polled every ``poll_interval`` seconds instead of 30 s).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from bench.harness.ghz import GhzLoad
from bench.harness.ghz_report import merge_reports
from bench.harness.stats import ratio
from bench.keda_load.lanes.ghz_phases import HPA_DEADLINE, round_phases, sustained_pattern
from bench.keda_load.servers import Server
from bench.keda_load.windows import snapshot, window
from bench.keda_load.workbench import RedisWorkload, Workbench


async def poll(bench: Workbench) -> dict[str, Any]:
    s = bench.sizes
    out: dict[str, Any] = {
        "objects": s.poll_objects,
        "queues": s.poll_queues,
        "concurrency": s.poll_concurrency,
        "cache_ttl_s": bench.ttl,
    }
    async with bench.redis_workload("Poll", s.poll_objects, s.poll_queues) as work:
        hpa = bench.data("poll-metrics-hpa", [o.metrics_request(hpa=True) for o in work.objects])
        for mode in bench.modes:
            async with bench.server("scaler", mode) as server:
                out[mode] = await _poll_mode(bench, server, work, hpa)
    if "normal" in out and "naive" in out:
        out["ratios"] = _naive_over_normal(out["naive"], out["normal"])
    return out


def _naive_over_normal(naive: dict[str, Any], normal: dict[str, Any]) -> dict[str, float]:
    ratios = {}
    for kind in ("poll_round", "hpa_round"):
        ratios[f"{kind}_broker_requests_naive_over_normal"] = ratio(
            naive[kind]["broker_requests"], normal[kind]["broker_requests"]
        )
        ratios[f"{kind}_p99_naive_over_normal"] = ratio(
            naive[kind]["latency_p99_ms"], normal[kind]["latency_p99_ms"]
        )
    ratios["sustained_broker_per_s_naive_over_normal"] = ratio(
        naive["sustained"]["broker_requests_per_s"], normal["sustained"]["broker_requests_per_s"]
    )
    ratios["sustained_p99_naive_over_normal"] = ratio(
        naive["sustained"]["latency_p99_ms"], normal["sustained"]["latency_p99_ms"]
    )
    return ratios


async def _round(
    bench: Workbench, server: Server, refs: Path, metrics: Path, n: int, deadline: float | None
) -> dict[str, Any]:
    """GetMetricSpec, GetMetrics, IsActive for every object, as three sequential phases."""
    before = await snapshot(server, bench.redis, bench.server_cpu)
    reports = []
    first_read_at = 0.0
    for load in round_phases(refs, metrics, n, bench.sizes.poll_concurrency, deadline):
        if load.method == "GetMetrics":
            first_read_at = time.perf_counter()
        reports.append(await bench.ghz_run(server, load))
    after = await snapshot(server, bench.redis, bench.server_cpu)
    win = window(before, after)
    requests = win["redis"]["requests"]
    # reads can only happen from the first GetMetrics on: windows of the TTL from there
    reading = after.at - first_read_at
    windows = max(1, math.ceil(reading / bench.ttl)) if bench.ttl > 0 else 1
    queues = bench.sizes.poll_queues
    return {
        **merge_reports(reports, after.at - before.at),
        "broker_requests": requests,
        "broker_by_command": win["redis"]["by_command"],
        "reading_s": round(reading, 3),
        "ttl_windows": windows,
        "broker_requests_per_queue_per_window": round(requests / (queues * windows), 2),
        "server_cpu_pct": win["server_cpu_pct"],
        "server_core_foreign_pct": win.get("server_core_foreign_pct"),
        "coalescing": win.get("coalescing"),
    }


async def _poll_mode(
    bench: Workbench, server: Server, work: RedisWorkload, hpa: Path
) -> dict[str, Any]:
    """The rounds and the sustained run on one server; ``hpa``: the HPA's GetMetrics data."""
    s = bench.sizes
    objects, refs, polled = work.objects, work.refs, work.metrics
    n = len(objects)
    bench.say(f"  poll {server.mode}: warm-up (GetMetricSpec x {n}, as at HPA creation)")
    await bench.ghz_run(server, GhzLoad("GetMetricSpec", refs, s.poll_concurrency, total=n))
    # one read per queue: the scaler's connection and its script are in place, as in
    # steady state (a fresh Redis answers the first EVALSHA with NOSCRIPT, then EVAL)
    await bench.ghz_run(server, GhzLoad("GetMetrics", polled, 1, total=s.poll_queues))
    await asyncio.sleep(bench.ttl + 0.2)
    bench.say(f"  poll {server.mode}: one poll round ({3 * n} RPCs)")
    result: dict[str, Any] = {"poll_round": await _round(bench, server, refs, polled, n, None)}
    await asyncio.sleep(bench.ttl + 0.2)
    bench.say(f"  poll {server.mode}: one HPA round (3 s deadline, lower-cased names)")
    result["hpa_round"] = await _round(bench, server, refs, hpa, n, HPA_DEADLINE)
    await asyncio.sleep(bench.ttl + 0.2)
    rate = max(1, round(n / s.poll_interval))
    bench.say(
        f"  poll {server.mode}: sustained {s.sustained_seconds:g}s, {s.poll_streams} streams, "
        f"poll + HPA every {s.poll_interval:g}s per object ({6 * rate} RPC/s offered)"
    )
    holder = await bench.hold_streams(server, objects[: s.poll_streams])
    try:
        await asyncio.sleep(1.0)
        base0 = await snapshot(server, bench.redis, bench.server_cpu)
        await asyncio.sleep(s.baseline_seconds)
        base1 = await snapshot(server, bench.redis, bench.server_cpu)
        baseline = window(base0, base1)
        loads = sustained_pattern(refs, polled, hpa, s.poll_concurrency, s.sustained_seconds, rate)
        before = await snapshot(server, bench.redis, bench.server_cpu)
        reports = await asyncio.gather(*(bench.ghz_run(server, load) for load in loads))
        after = await snapshot(server, bench.redis, bench.server_cpu)
        during = window(before, after)
        memory = server.memory()
    finally:
        held = await holder.close()
    result["sustained"] = {
        **merge_reports(reports, after.at - before.at),
        "offered_rpc_per_s": 6 * rate,
        "streams": s.poll_streams,
        **holder.readiness(),
        "streams_report": held,
        "broker_requests_per_s": during["redis"]["per_s"],
        "broker_requests_per_s_streams_only": baseline["redis"]["per_s"],
        "broker_requests_per_queue_per_s": round(during["redis"]["per_s"] / s.poll_queues, 2),
        "server_cpu_pct": during["server_cpu_pct"],
        "window": during,
        **memory,
    }
    return result
