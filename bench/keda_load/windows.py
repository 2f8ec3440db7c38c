"""Measurement windows: counters at one instant (a snapshot), and what happened between two.

A snapshot holds the server's CPU ticks, the server core's load, the CPU of finished children
(the load generators), the measured Redis' command counts, the scaler's own metrics and any
broker counters; :func:`window` turns two of them into rates and shares.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Any

from bench.harness.broker_counts import redis_requests
from bench.harness.procfs import CLK_TCK, core_busy_now
from bench.harness.prometheus import Samples, series_sum
from bench.keda_load.redis_broker import RedisBroker
from bench.keda_load.servers import Server

READS = "keda_queue_scaler_backend_request_duration_seconds_count"
READ_SECONDS = "keda_queue_scaler_backend_request_duration_seconds_sum"
COALESCING = "keda_queue_scaler_coalescing_total"
BACKEND_ERRORS = "keda_queue_scaler_backend_errors_total"


@dataclass
class Snapshot:
    """Counters at one instant; two of them make a window."""

    at: float
    server_ticks: int
    core: tuple[int, int] | None
    children_cpu: float
    redis: dict[str, int] | None
    scaler: Samples | None
    extra: dict[str, float] = field(default_factory=dict)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def snapshot(
    server: Server,
    redis: RedisBroker | None,
    cpu: int | None,
    extra: dict[str, float] | None = None,
) -> Snapshot:
    """Counters now; ``cpu`` is the server's core (None: not pinned), ``extra`` broker counters."""
    server.check_alive()
    return Snapshot(
        at=time.perf_counter(),
        server_ticks=server.cpu_ticks(),
        core=core_busy_now(cpu) if cpu is not None else None,
        children_cpu=_children_cpu(),
        redis=await redis.calls() if redis is not None else None,
        scaler=await server.metrics(),
        extra=extra or {},
    )


def window(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """What happened between two snapshots: CPU shares, broker requests, scaler reads."""
    seconds = b.at - a.at
    server_cpu = (b.server_ticks - a.server_ticks) / CLK_TCK
    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "server_cpu_pct": round(100 * server_cpu / seconds, 1),
        # ghz, the stream holder and other children that ended in the window (the load side)
        "ended_children_cpu_s": round(b.children_cpu - a.children_cpu, 2),
    }
    if a.core is not None and b.core is not None:
        busy = b.core[0] - a.core[0]
        total = b.core[1] - a.core[1]
        if total > 0:
            core_pct = 100 * busy / total
            out["server_core_busy_pct"] = round(core_pct, 1)
            # anything else that ran on the server's core (other users of the machine)
            out["server_core_foreign_pct"] = round(max(core_pct - out["server_cpu_pct"], 0.0), 1)
    if a.redis is not None and b.redis is not None:
        counted = redis_requests(a.redis, b.redis)
        out["redis"] = {**counted, "per_s": round(counted["requests"] / seconds, 1)}
    if a.scaler is not None and b.scaler is not None:
        out.update(_scaler_window(a.scaler, b.scaler))
    for key, value in b.extra.items():
        if key in a.extra:
            out.setdefault("broker_counters", {})[key] = value - a.extra[key]
    return out


def _scaler_window(a: Samples, b: Samples) -> dict[str, Any]:
    """The scaler's reads per backend, their mean duration, coalescing outcomes and errors."""

    def delta(name: str, **labels: str) -> float:
        return series_sum(b, name, **labels) - series_sum(a, name, **labels)

    reads = {}
    for backend in ("redis", "rabbitmq", "kafka"):
        n = delta(READS, backend=backend)
        if n:
            reads[backend] = int(n)
    read_ms = {
        backend: round(1000 * delta(READ_SECONDS, backend=backend) / n, 2)
        for backend, n in reads.items()
    }
    coalescing = {
        result: int(delta(COALESCING, result=result)) for result in ("hit", "miss", "shared")
    }
    errors: dict[str, int] = {}
    for (name, labels), value in b.items():
        if name == BACKEND_ERRORS:
            n = int(value - a.get((name, labels), 0.0))
            if n:
                errors[",".join(f"{k}={v}" for k, v in sorted(labels))] = n
    return {
        "scaler_reads": reads,
        "scaler_read_mean_ms": read_ms,
        "coalescing": coalescing,
        "scaler_backend_errors": errors,
    }
