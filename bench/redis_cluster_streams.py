"""Watching many Redis streams on a Cluster: broker requests per master, CPU, RSS, activation.

    python -m bench.redis_cluster_streams [--streams 1000] [--window 20] [--activations 200]

Needs the test Cluster (``make brokers``; ``SCALER_TEST_REDIS_CLUSTER_NODES``, else
``--seeds``). Creates ``--streams`` streams, each with a consumer group at its end, and checks
that they fall on every master (``SCAN`` on each, against the slot map). Each stream gets one
``StreamIsActive`` over gRPC, all on one channel as KEDA holds them, with ``backend:
redis-cluster-streams`` and ``lagCount`` (the measure is the group's lag, the entries not yet
delivered to it: what a KEDA push trigger on a worker queue watches).

The same streams are held first on the no-op gRPC server (``bench.harness.noop_server``: Python's
gRPC holding them, no broker) and then on the scaler (``python -m scaler serve``, default settings
unless a flag says otherwise), each a process of its own pinned to core 0 on a machine with two
cores or more (this process on core 1). For each: once every stream has sent its initial
``false``, one steady window of ``--window`` seconds: per master, the script calls (EVALSHA and
EVAL) and all commands per second from ``INFO commandstats``, and the server's CPU and RSS. The
no-op run's counts are the Cluster's background (other clients of a shared Cluster). The scaler
is also measured idle, before any stream opens.

Then ``--activations`` times: a random idle stream gets one ``XADD``, timed until its stream's
``true``. StreamIsActive sends only the initial state and inactive-to-active edges (KEDA ignores
``false``), so the way back to idle is observed with ``IsActive``: the entry is read and
acknowledged (``XREADGROUP``, ``XACK``, as a worker would) and ``IsActive`` polled until
``false``; a stream is picked again only after a cool-down. Prints a table (``--json``: the
report as JSON instead), writes ``bench/results/redis_cluster_streams.json``, and deletes the
streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster

from bench.harness.paths import RESULTS
from bench.harness.procfs import CLK_TCK, core_busy_now, loadavg
from bench.harness.prometheus import series_sum
from bench.harness.scaler_facts import DEFAULTS, watch_interval
from bench.keda_load.report.output import jsonable, machine, write_report
from bench.keda_load.servers import Server
from bench.redis_cluster_figures import (
    all_masters,
    latency_figures,
    master_window,
    render,
    watch_cycle,
)
from bench.redis_cluster_io import (
    OpenStreams,
    connect,
    consume,
    create_streams,
    delete_streams,
    master_stats,
    scaler_connections,
    verify_spread,
)
from scaler.proto import externalscaler_pb2 as pb

BACKEND = "redis-cluster-streams"
GROUP = "kqs-bench"
CONSUMER = "kqs-bench-worker"
NAMESPACE = "bench"
SERVER_CPU, LOAD_CPU = 0, 1
#: seconds before an activated stream may be picked again
COOL_DOWN = 1.0


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def trigger(seeds: str, stream: str) -> dict[str, str]:
    """The metadata of one stream's ScaledObject: the group's lag, active beyond 0."""
    return {
        "backend": BACKEND,
        "addresses": seeds,
        "stream": stream,
        "consumerGroup": GROUP,
        "lagCount": "10",
    }


class ClusterScaler(Server):
    """The scaler, with ``serve`` flags beyond the benchmark's usual ones."""

    def __init__(self, logs: Any, cpu: int | None, options: Sequence[str]) -> None:
        super().__init__("scaler", "normal", logs, cpu)
        self.options = list(options)

    def argv(self) -> list[str]:
        return [*super().argv(), *self.options]


@contextlib.asynccontextmanager
async def serving(server: Server) -> AsyncIterator[Server]:
    await server.start()
    try:
        yield server
    finally:
        status = await server.stop()
        if status not in (0, None):
            say(f"{server.kind} exited with {status}; log: {server.log}")


async def steady_window(
    server: Server, cluster: RedisCluster, seconds: float, cpu: int | None
) -> dict[str, Any]:
    """Per master what it served, and the server's CPU, over ``seconds``."""
    before = await master_stats(cluster)
    ticks, core, start = server.cpu_ticks(), _core(cpu), time.perf_counter()
    await asyncio.sleep(seconds)
    ticks_after, core_after, elapsed = server.cpu_ticks(), _core(cpu), time.perf_counter() - start
    after = await master_stats(cluster)
    server.check_alive()
    rows = {name: master_window(before[name], after[name], elapsed) for name in after}
    cpu_pct = 100 * (ticks_after - ticks) / CLK_TCK / elapsed
    out: dict[str, Any] = {
        "seconds": round(elapsed, 2),
        "cpu_pct": round(cpu_pct, 1),
        "masters": rows,
        "all_masters": all_masters(rows),
        **server.memory(),
    }
    if core is not None and core_after is not None and core_after[1] > core[1]:
        busy = 100 * (core_after[0] - core[0]) / (core_after[1] - core[1])
        out["core_busy_pct"] = round(busy, 1)
        out["core_foreign_pct"] = round(max(busy - cpu_pct, 0.0), 1)
    return out


def _core(cpu: int | None) -> tuple[int, int] | None:
    return None if cpu is None else core_busy_now(cpu)


async def held_window(
    server: Server, cluster: RedisCluster, refs: Mapping[str, pb.ScaledObjectRef], args: Any
) -> tuple[dict[str, Any], OpenStreams]:
    """Open every stream, wait for the initial states, settle, measure one window."""
    streams = OpenStreams(server.stub, refs)
    try:
        opened = await streams.ready(args.ready_within)
        say(f"  {server.kind}: {len(refs):,} streams open, all initial false in {opened:.2f} s")
        await asyncio.sleep(args.settle)
        window = await steady_window(server, cluster, args.window, args.server_cpu)
    except BaseException:
        await streams.close()
        raise
    return {"open_s": opened, **window}, streams


async def pick_idle(keys: Sequence[str], used: Mapping[str, float]) -> str:
    """A random stream not activated within :data:`COOL_DOWN` (waiting for one if need be)."""
    while True:
        now = time.monotonic()
        idle = [k for k in keys if now - used.get(k, -COOL_DOWN) >= COOL_DOWN]
        if idle:
            return random.choice(idle)
        await asyncio.sleep(0.05)


async def activate(
    cluster: RedisCluster,
    server: Server,
    streams: OpenStreams,
    refs: Mapping[str, pb.ScaledObjectRef],
    args: Any,
) -> dict[str, Any]:
    """XADD to a random idle stream, time its true, consume it, wait for IsActive false."""
    keys = list(refs)
    latencies: list[float] = []
    xadds: list[float] = []
    idles: list[float] = []
    missed = not_true = 0
    used: dict[str, float] = {}
    for _ in range(args.activations):
        # a random phase of the watch cycle, so that the latencies sample all of it
        await asyncio.sleep(0.005 + random.uniform(0, args.cycle_s))
        key = await pick_idle(keys, used)
        arrival = streams.expect(key)
        start = time.perf_counter()
        await cluster.xadd(key, {"job": "1"})
        xadds.append(time.perf_counter() - start)
        try:
            arrived, value = await asyncio.wait_for(arrival, args.timeout)
        except TimeoutError:
            streams.forget(key)
            missed += 1
        else:
            latencies.append(arrived - start)
            not_true += not value
        drained = time.perf_counter()
        await consume(cluster, key, GROUP, CONSUMER)
        deadline = time.monotonic() + args.timeout
        while (await server.stub.IsActive(refs[key], timeout=3)).result:
            if time.monotonic() > deadline:
                raise RuntimeError(f"IsActive still true {args.timeout:g} s after acking {key}")
            await asyncio.sleep(0.005)
        idles.append(time.perf_counter() - drained)
        used[key] = time.monotonic()
    return {
        "latency": latency_figures(latencies),
        "xadd": latency_figures(xadds),
        "back_to_idle": latency_figures(idles),
        "missed": missed,
        "sent_false": not_true,
        "timeout_s": args.timeout,
        "distinct_streams": len(used),
    }


async def run(args: Any) -> dict[str, Any]:
    pin = (os.cpu_count() or 1) >= 2 and not args.no_pin
    args.server_cpu = SERVER_CPU if pin else None
    if pin:
        os.sched_setaffinity(0, {LOAD_CPU})
    logs = RESULTS / "redis_cluster_streams_logs"
    options: list[str] = []
    if args.watch_max_requests is not None:
        options += ["--watch-max-requests", f"{args.watch_max_requests:g}"]
    if args.watch_interval is not None:
        options += ["--watch-intervals", f"{BACKEND}={args.watch_interval:g}"]
    interval = args.watch_interval or watch_interval(BACKEND)
    max_requests = args.watch_max_requests or DEFAULTS.watch_max_requests
    cluster = await connect(args.seeds)
    masters = cluster.get_primaries()
    args.cycle_s = watch_cycle(interval, len(masters), max_requests)
    report: dict[str, Any] = {
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": machine(),
        "redis_version": (await cluster.info("server", target_nodes=masters[0]))["redis_version"],
        "setup": {
            "window_s": args.window,
            "watch_interval_s": interval,
            "watch_max_requests": max_requests,
            "cycle_s": args.cycle_s,
            "serve_options": options,
            "server_cpu": args.server_cpu,
        },
        "runs": {},
    }
    tag = f"kqs-bench-cs-{uuid.uuid4().hex[:6]}"
    keys = [f"{tag}-{i}" for i in range(args.streams)]
    refs = {
        key: pb.ScaledObjectRef(
            name=f"so-{i}", namespace=NAMESPACE, scalerMetadata=trigger(args.seeds, key)
        )
        for i, key in enumerate(keys)
    }
    runs = report["runs"]
    try:
        say(f"creating {len(keys):,} streams with group {GROUP} on {len(masters)} masters")
        await create_streams(cluster, keys, GROUP)
        report["streams"] = {
            "count": len(keys),
            "measure": "lagCount",
            **await verify_spread(cluster, keys, tag),
        }
        async with serving(Server("noop", "noop", logs, args.server_cpu)) as noop:
            runs["noop"], streams = await held_window(noop, cluster, refs, args)
            await streams.close()
        async with serving(ClusterScaler(logs, args.server_cpu, options)) as scaler:
            if args.idle_window > 0:
                say(f"  scaler: idle for {args.idle_window:g} s")
                runs["scaler_idle"] = await steady_window(
                    scaler, cluster, args.idle_window, args.server_cpu
                )
            runs["scaler"], streams = await held_window(scaler, cluster, refs, args)
            try:
                runs["scaler"]["connections"] = await scaler_connections(cluster)
                samples = await scaler.metrics()
                assert samples is not None
                runs["scaler"]["watchers"] = series_sum(samples, "keda_queue_scaler_watchers")
                say(f"  scaler: {args.activations} activations")
                report["activation"] = await activate(cluster, scaler, streams, refs, args)
                report["activation"]["unexpected_pushes"] = streams.unexpected
                report["activation"]["ended_early"] = dict(streams.ended)
            finally:
                await streams.close()
    finally:
        say("deleting the streams")
        await delete_streams(cluster, keys)
        await cluster.aclose()
    report["loadavg_end"] = loadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        default=os.environ.get("SCALER_TEST_REDIS_CLUSTER_NODES", "127.0.0.1:17000"),
        help="Cluster seed nodes, host:port,... (default: $SCALER_TEST_REDIS_CLUSTER_NODES)",
    )
    parser.add_argument("--streams", type=int, default=1000, help="streams watched (1000)")
    parser.add_argument(
        "--window", type=float, default=20.0, help="seconds of each steady window (20)"
    )
    parser.add_argument(
        "--idle-window", type=float, default=10.0, help="seconds of the idle scaler (10; 0: skip)"
    )
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds from the initial states to a window (3)"
    )
    parser.add_argument("--activations", type=int, default=200, help="activations timed (200)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds an activation may take (10)"
    )
    parser.add_argument(
        "--ready-within", type=float, default=120.0, help="seconds for the initial states (120)"
    )
    parser.add_argument(
        "--watch-max-requests", type=float, help="serve --watch-max-requests (default: serve's)"
    )
    parser.add_argument(
        "--watch-interval", type=float, help=f"seconds, serve --watch-intervals {BACKEND}=..."
    )
    parser.add_argument("--no-pin", action="store_true", help="no taskset, even on 2+ cores")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead")
    args = parser.parse_args()
    if args.streams < 1 or (args.activations > 0 and args.streams < 2):
        parser.error("--streams must be at least 1 (2 with activations)")
    report = asyncio.run(run(args))
    out = write_report(RESULTS / "redis_cluster_streams.json", report)
    print(json.dumps(jsonable(report), indent=2) if args.json else render(report))
    say(f"written to {out}")


if __name__ == "__main__":
    main()
