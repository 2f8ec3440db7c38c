"""Scenario ``activation``: enqueue into an empty queue, time until the stream says ``true``.

Per backend kind (see :data:`bench.keda_load.lanes.activation.BACKENDS`), a few lanes in
parallel, each activated again and again: enqueue, wait for ``true`` on its stream, drain, poll
IsActive until ``false``, wait a random fraction of the watch interval. The broker's requests
per second over the whole run come from the broker where it counts them.
"""

from __future__ import annotations

import asyncio
import math
import traceback
from typing import Any

from bench.harness.scaler_facts import KAFKA_REQUESTS_PER_READ, watch_interval
from bench.harness.stats import latency_summary
from bench.keda_load.lanes.activation import open_lanes, run_lane
from bench.keda_load.servers import Server
from bench.keda_load.windows import snapshot, window
from bench.keda_load.workbench import Workbench


async def activation(bench: Workbench) -> dict[str, Any]:
    out: dict[str, Any] = {"activations_per_backend": bench.sizes.activations}
    failures = []
    for mode in bench.args.activation_modes:
        async with bench.server("scaler", mode) as server:
            out[mode] = {}
            for backend in bench.args.backends:
                try:
                    out[mode][backend] = await _activate(bench, server, backend)
                except Exception as err:  # noqa: BLE001 - reported, the next backend runs
                    detail = "".join(traceback.format_exception_only(type(err), err)).strip()
                    out[mode][backend] = {"error": detail}
                    failures.append(f"{mode} {backend}: {detail}")
                    bench.say(f"  activation {mode} {backend}: FAILED: {detail}")
    bench.errors.extend({"scenario": "activation", "error": f} for f in failures)
    return out


async def _activate(bench: Workbench, server: Server, backend: str) -> dict[str, Any]:
    s = bench.sizes
    lanes_n = {"rabbitmq-http": s.http_lanes, "rabbitmq-amqp": s.amqp_lanes}.get(backend, s.lanes)
    lanes = await open_lanes(backend, bench.redis, bench.brokers, lanes_n, f"{bench.tag}-{backend}")
    scaler_backend = backend.split("-")[0]
    interval = watch_interval(scaler_backend)
    per_lane = math.ceil(s.activations / lanes_n)
    bench.say(
        f"  activation {server.mode} {backend}: {per_lane * lanes_n} activations "
        f"over {lanes_n} queues (watch interval {interval * 1000:g} ms)"
    )
    latencies: list[float] = []
    anomalies: list[str] = []
    try:
        extra = await lanes.counters() if lanes.counters else None
        redis = bench.redis if backend == "redis" else None
        before = await snapshot(server, redis, bench.server_cpu, extra)
        await asyncio.gather(
            *(
                run_lane(lane, server.stub, per_lane, interval, latencies, anomalies)
                for lane in lanes.lanes
            )
        )
        extra = await lanes.counters() if lanes.counters else None
        after = await snapshot(server, redis, bench.server_cpu, extra)
    finally:
        await lanes.cleanup()
    win = window(before, after)
    reads = win.get("scaler_reads", {}).get(scaler_backend, 0)
    result: dict[str, Any] = {
        "queues": lanes_n,
        "watch_interval_ms": interval * 1000,
        **latency_summary(latencies),
        "anomalies": anomalies[:5],
        "scaler_reads_per_s": round(reads / win["seconds"], 1),
        "broker_source": lanes.source,
        "window": win,
    }
    if "redis" in win:
        result["broker_requests_per_s"] = win["redis"]["per_s"]
    elif "broker_counters" in win:
        result["broker_requests_per_s"] = round(
            win["broker_counters"]["channels_opened"] / win["seconds"], 1
        )
    elif backend == "kafka":
        result["broker_requests_per_s"] = round(
            result["scaler_reads_per_s"] * KAFKA_REQUESTS_PER_READ, 1
        )
    else:
        result["broker_requests_per_s"] = result["scaler_reads_per_s"]
    return result
