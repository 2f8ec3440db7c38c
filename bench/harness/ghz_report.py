"""ghz's JSON report (``-O json``) read into latencies and outcomes, and merged across runs.

Durations in the report are nanoseconds and ``details`` holds one entry per request, so reports
of ghz processes that ran side by side (or one after another) merge into one set of latencies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.harness.stats import latency_summary


@dataclass
class GhzReport:
    """What one ghz run measured: request latencies in seconds, outcomes, wall time."""

    call: str
    count: int
    wall_seconds: float
    rps: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses.get("OK", 0)

    @property
    def failed(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != "OK")


def parse_ghz(report: Mapping[str, Any], call: str = "") -> GhzReport:
    """Read ghz's JSON report (``-O json``).

    Latencies come from ``details`` (every request; ghz's own ``latencyDistribution`` covers OK
    requests only and cannot be merged across processes); durations are nanoseconds.
    """
    details = report.get("details") or []
    latencies = [d["latency"] / 1e9 for d in details if d.get("status", "OK") == "OK"]
    statuses: dict[str, int] = dict(report.get("statusCodeDistribution") or {})
    if not statuses and details:
        for d in details:
            statuses[d.get("status", "OK")] = statuses.get(d.get("status", "OK"), 0) + 1
    return GhzReport(
        call=call or str(report.get("options", {}).get("call", "")),
        count=int(report.get("count", len(details))),
        wall_seconds=float(report.get("total", 0)) / 1e9,
        rps=float(report.get("rps", 0.0)),
        latencies=latencies,
        statuses=statuses,
        errors=dict(report.get("errorDistribution") or {}),
    )


def merge_reports(reports: Iterable[GhzReport], wall_seconds: float) -> dict[str, Any]:
    """Totals of ghz runs that together took ``wall_seconds``: RPCs, RPC/s, latencies, errors.

    ``wall_seconds`` is measured by the caller around all of them (sequential phases, or
    processes run side by side), so RPC/s is the whole load's rate.
    """
    reports = list(reports)
    latencies = [lat for r in reports for lat in r.latencies]
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in reports:
        for code, n in r.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
        for text, n in r.errors.items():
            errors[text] = errors.get(text, 0) + n
    rpcs = sum(r.count for r in reports)
    return {
        "rpcs": rpcs,
        "ok": statuses.get("OK", 0),
        "wall_s": round(wall_seconds, 3),
        "rpc_per_s": round(rpcs / wall_seconds, 1) if wall_seconds > 0 else math.nan,
        **{f"latency_{k}": v for k, v in latency_summary(latencies).items() if k != "count"},
        "statuses": statuses,
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
    }
