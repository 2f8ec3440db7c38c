"""What one GetMetrics costs in the scaler's own Python, without gRPC: timing and cProfile.

    python -m bench.handler_profile --redis-address 127.0.0.1:6379 [--calls 20000] [--objects N]

Builds the scaler exactly as ``serve`` does (``ScalerApp``: engine, coalescer, metrics, watch
hub; ``bench.harness.scaler_facts`` wraps it) without binding a port, and awaits its
``ExternalScalerServicer.GetMetrics`` directly with a stand-in servicer context, over N
ScaledObjects on M Redis lists (served from the coalescing cache, as under load: one Redis read
per list per second). The same loop over the no-op servicer
(``bench.harness.noop_server``) gives the floor. Then the scaler's loop once more under cProfile.

Prints one JSON object: microseconds per call for both, and the functions with the most own
(``tottime``) and cumulative time. ``bench.keda_load --profile`` runs it pinned to the server's
core; set against the server's CPU per RPC under ghz, it splits the cost per RPC into gRPC's
part (the no-op server's) and the scaler's part.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from typing import Any

from bench.harness.noop_server import NoopServicer
from bench.harness.paths import REPO_ROOT
from bench.harness.scaler_facts import in_process_servicer
from bench.keda_load.objects import redis_objects
from scaler.proto import externalscaler_pb2 as pb


class FakeContext:
    """The parts of a grpc.aio servicer context the handlers use (no deadline, as KEDA polls)."""

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"aborted with {code}: {details}")


def requests(objects: int, queues: int, address: str) -> list[pb.GetMetricsRequest]:
    """GetMetrics requests as bench.keda_load sends them (distinct metadata per object)."""
    lists = [f"kqs-bench-profile-{j:03d}" for j in range(queues)]
    return [
        pb.GetMetricsRequest(scaledObjectRef=o.ref_pb(), metricName=o.metric)
        for o in redis_objects(objects, lists, address, "profile")
    ]


async def _loop(servicer: Any, blobs: list[bytes], calls: int) -> float:
    """Seconds for ``calls`` requests, each parsed afresh from its bytes as gRPC hands it over
    (a parsed message decodes its strings on first access, so reusing one would flatter)."""
    context = FakeContext()
    n = len(blobs)
    parse = pb.GetMetricsRequest.FromString
    start = time.perf_counter()
    if servicer is None:  # parsing alone, to subtract
        for i in range(calls):
            parse(blobs[i % n])
    else:
        for i in range(calls):
            await servicer.GetMetrics(parse(blobs[i % n]), context)
    return time.perf_counter() - start


def _top(stats: pstats.Stats, key: str, total: float, count: int) -> list[list[Any]]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps it untyped
    rows = []
    for (filename, line, function), (_, ncalls, tottime, cumtime, _) in raw.items():
        rows.append((tottime if key == "tottime" else cumtime, ncalls, filename, line, function))
    rows.sort(key=lambda r: -r[0])
    out = []
    for seconds, ncalls, filename, line, function in rows[:count]:
        where = filename.split("site-packages/")[-1].removeprefix(f"{REPO_ROOT}/")
        out.append([round(100 * seconds / total, 1), ncalls, f"{function} ({where}:{line})"])
    return out


async def run(address: str, calls: int, objects: int, queues: int) -> dict[str, Any]:
    blobs = [r.SerializeToString() for r in requests(objects, queues, address)]
    async with in_process_servicer() as servicer:
        await _loop(servicer, blobs, len(blobs))  # parse every object, read every list once
        parse_s = await _loop(None, blobs, calls)
        scaler_s = await _loop(servicer, blobs, calls) - parse_s
        noop_s = await _loop(NoopServicer(), blobs, calls) - parse_s
        profiler = cProfile.Profile()
        profiler.enable()
        await _loop(servicer, blobs, calls)
        profiler.disable()
    stats = pstats.Stats(profiler)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    return {
        "calls": calls,
        "objects": objects,
        "queues": queues,
        "scaler_us_per_call": round(1e6 * scaler_s / calls, 1),
        "noop_us_per_call": round(1e6 * noop_s / calls, 1),
        "parse_us_per_call": round(1e6 * parse_s / calls, 1),
        "profiled_us_per_call": round(1e6 * total / calls, 1),
        "tottime_pct": _top(stats, "tottime", total, 20),
        "cumtime_pct": _top(stats, "cumtime", total, 25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-address", required=True, help="host:port")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--queues", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args.redis_address, args.calls, args.objects, args.queues))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
