"""Scenario ``throughput``: GetMetrics as fast as the server answers, against the no-op ceiling.

N ScaledObjects on M lists at a fixed ghz concurrency for a fixed time, first on the no-op
server and then on the scaler in each mode, in the same run; ``--profile`` adds the profiles of
:mod:`bench.keda_load.scenarios.profiling` to the normal mode.
"""

from __future__ import annotations

import math
from typing import Any

from bench.harness.ghz import GhzLoad
from bench.harness.ghz_report import merge_reports
from bench.harness.stats import ratio
from bench.keda_load.scenarios.profiling import handler_profile, py_spy_profile
from bench.keda_load.servers import Server
from bench.keda_load.windows import snapshot, window
from bench.keda_load.workbench import RedisWorkload, Workbench


async def throughput(bench: Workbench) -> dict[str, Any]:
    s = bench.sizes
    out: dict[str, Any] = {
        "objects": s.tp_objects,
        "queues": s.tp_queues,
        "concurrency": s.tp_concurrency,
        "seconds": s.tp_seconds,
        "streams": s.tp_streams,
    }
    async with bench.redis_workload("Tp", s.tp_objects, s.tp_queues) as work:
        load = GhzLoad("GetMetrics", work.metrics, s.tp_concurrency, duration=s.tp_seconds)
        async with bench.server("noop", "noop") as server:
            bench.say("  throughput noop: Python's own ceiling (constant answers)")
            warm_up = GhzLoad(
                "GetMetrics", work.metrics, s.tp_concurrency, total=min(s.tp_objects, 2000)
            )
            await bench.ghz_run(server, warm_up)
            out["noop"] = await _measure_load(bench, server, load)
        for mode in bench.modes:
            async with bench.server("scaler", mode) as server:
                out.update(await _scaler_mode(bench, server, work, load))
    out["ratios"] = _ratios(out)
    return out


async def _scaler_mode(
    bench: Workbench, server: Server, work: RedisWorkload, load: GhzLoad
) -> dict[str, Any]:
    """Every object known and read once, the streams open (if any), then the measured load.

    :returns: the figures under the server's mode, and with ``--profile`` in normal mode the
        profiles under ``profile`` and ``handler_profile``
    """
    s = bench.sizes
    n = len(work.objects)
    bench.say(f"  throughput {server.mode}: warm-up (GetMetricSpec + GetMetrics x {n})")
    await bench.ghz_run(server, GhzLoad("GetMetricSpec", work.refs, 50, total=n))
    await bench.ghz_run(server, GhzLoad("GetMetrics", work.metrics, 50, total=n))
    holder = (
        await bench.hold_streams(server, work.objects[: s.tp_streams]) if s.tp_streams else None
    )
    try:
        bench.say(f"  throughput {server.mode}: GetMetrics for {s.tp_seconds:g}s")
        out = {server.mode: await _measure_load(bench, server, load)}
        if bench.args.profile and server.mode == "normal":
            out["profile"] = await py_spy_profile(bench, server, load)
            out["handler_profile"] = await handler_profile(bench)
        return out
    finally:
        if holder is not None:
            await holder.close()


def _ratios(out: dict[str, Any]) -> dict[str, float]:
    ratios = {}
    if "normal" in out:
        ratios["normal_over_noop_rps"] = ratio(out["normal"]["rpc_per_s"], out["noop"]["rpc_per_s"])
        ratios["noop_over_normal_cpu_per_rpc"] = ratio(
            out["noop"]["server_cpu_us_per_rpc"], out["normal"]["server_cpu_us_per_rpc"]
        )
    if "normal" in out and "naive" in out:
        normal, naive = out["normal"], out["naive"]
        ratios["naive_over_normal_rps"] = ratio(naive["rpc_per_s"], normal["rpc_per_s"])
        ratios["naive_over_normal_p99"] = ratio(naive["latency_p99_ms"], normal["latency_p99_ms"])
        ratios["naive_over_normal_broker_per_s"] = ratio(
            naive["broker_requests_per_s"], normal["broker_requests_per_s"]
        )
    return ratios


async def _measure_load(bench: Workbench, server: Server, load: GhzLoad) -> dict[str, Any]:
    before = await snapshot(server, bench.redis, bench.server_cpu)
    report = await bench.ghz_run(server, load)
    after = await snapshot(server, bench.redis, bench.server_cpu)
    win = window(before, after)
    wall = report.wall_seconds or (after.at - before.at)
    cpu_s = win["server_cpu_pct"] * win["seconds"] / 100
    us_per_rpc = round(1e6 * cpu_s / report.count, 1) if report.count else math.nan
    return {
        **merge_reports([report], wall),
        "broker_requests_per_s": win["redis"]["per_s"],
        "server_cpu_pct": win["server_cpu_pct"],
        # CPU per RPC barely depends on what else runs on the core: the rate the server
        # would reach with the whole core is 10^6 / this
        "server_cpu_us_per_rpc": us_per_rpc,
        "rpc_per_s_at_full_core": round(1e6 / us_per_rpc) if us_per_rpc > 0 else math.nan,
        "load_generator_cpu_pct": round(100 * win["ended_children_cpu_s"] / win["seconds"], 1),
        "window": win,
        **server.memory(),
    }
