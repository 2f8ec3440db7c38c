"""Pure helpers of the KEDA load benchmark: percentiles, ghz reports, broker and scaler counters.

Nothing here starts a process or opens a socket, so ``tests/test_bench_parse.py`` covers it
without ghz or a broker.

* :func:`percentile` (nearest rank) and :func:`latency_summary` over latencies in seconds;
* :class:`GhzReport` / :func:`parse_ghz` read ghz's ``-O json`` output (durations in
  nanoseconds, one ``details`` entry per request) and :func:`merge_reports` combines the reports
  of ghz processes that ran side by side;
* :func:`redis_requests` turns two ``INFO commandstats`` snapshots into the requests the scaler
  sent (commands run inside its Lua scripts and the benchmark's own commands left out);
* :func:`parse_prometheus` / :func:`series_sum` read the scaler's ``/metrics`` text;
* :func:`cpu_ticks` reads utime + stime from ``/proc/PID/stat`` text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: commands the scaler's Lua length scripts call; Redis counts them in commandstats as well
SCRIPT_INTERNAL_COMMANDS = frozenset({"type", "llen", "scard", "zcard", "hlen"})
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


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 < q <= 100) by nearest rank; NaN for no values.

    Nearest rank is an observed value: p99 of 200 samples is the 198th smallest.
    """
    if not values:
        return math.nan
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p99, max and mean in milliseconds (rounded to the microsecond)."""
    if not seconds:
        return {"count": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": _ms(percentile(ordered, 50)),
        "p99_ms": _ms(percentile(ordered, 99)),
        "max_ms": _ms(ordered[-1]),
        "mean_ms": _ms(sum(ordered) / len(ordered)),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


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


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_prometheus(text: str) -> Samples:
    """Samples of a Prometheus text exposition, keyed by (name, labels)."""
    samples: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        pairs = frozenset(_LABEL.findall(labels or ""))
        try:
            samples[(name, pairs)] = float(value)
        except ValueError:
            continue
    return samples


def series_sum(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, pairs), v in samples.items() if n == name and wanted <= pairs)


def cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from the text of ``/proc/PID/stat``."""
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    fields = stat_text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return int(fields[11]) + int(fields[12])


def core_busy(stat_text: str, core: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core from the text of ``/proc/stat``."""
    for line in stat_text.splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return sum(values) - idle, sum(values)
    raise ValueError(f"no cpu{core} line in /proc/stat")


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator rounded to 0.01; NaN when undefined; inf for x/0 with x > 0."""
    if math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    if denominator == 0:
        return math.inf if numerator > 0 else math.nan
    return round(numerator / denominator, 2)
