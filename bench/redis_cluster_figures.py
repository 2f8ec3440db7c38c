"""The figures of ``bench.redis_cluster_streams``: Redis command statistics per master, the
streams' spread, activation percentiles, and the table. Pure: no broker, no process, no clock, so
``tests/test_bench_redis_cluster.py`` covers all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from bench.harness.stats import percentile

#: the commands a script call is counted under
SCRIPT_COMMANDS = ("evalsha", "eval")
#: what the stream script runs inside each call (Redis counts them in commandstats as well)
STREAM_SCRIPT_COMMANDS = frozenset(
    {"time", "type", "xlen", "xinfo|groups", "xinfo|stream", "xpending", "xrange"}
)
#: not a client's: the benchmark's ``INFO commandstats`` (one per snapshot), and the replicas'
#: acknowledgements (``REPLCONF ACK``, one per second per replica)
OWN_COMMANDS = frozenset({"info", "replconf"})


class Stat(NamedTuple):
    """One command's counts in ``INFO commandstats``: calls, and microseconds spent in them."""

    calls: int
    usec: int


def command_stats(commandstats: Mapping[str, Any]) -> dict[str, Stat]:
    """Calls and time per command from redis-py's ``info("commandstats")`` (``cmdstat_x`` ->
    ``x``)."""
    stats: dict[str, Stat] = {}
    for key, value in commandstats.items():
        if key.startswith("cmdstat_") and isinstance(value, Mapping):
            stats[key.removeprefix("cmdstat_")] = Stat(
                int(value.get("calls", 0)), int(value.get("usec", 0))
            )
    return stats


def master_window(
    before: Mapping[str, Stat], after: Mapping[str, Stat], seconds: float
) -> dict[str, Any]:
    """What one master served between two snapshots, per second.

    ``script_calls_per_s`` counts EVALSHA and EVAL; ``commands_per_s`` every command but
    :data:`OWN_COMMANDS`, the ones scripts run included; ``top_level_per_s`` leaves those out
    (a client's own XRANGE is then left out too: the no-op run says what other clients send);
    ``script_busy_pct`` is the share of the master's one thread spent in script calls.
    """
    zero = Stat(0, 0)
    delta = {
        cmd: Stat(s.calls - before.get(cmd, zero).calls, s.usec - before.get(cmd, zero).usec)
        for cmd, s in after.items()
    }
    delta = {cmd: d for cmd, d in delta.items() if d.calls > 0 and cmd not in OWN_COMMANDS}
    calls = sum(delta[c].calls for c in SCRIPT_COMMANDS if c in delta)
    usec = sum(delta[c].usec for c in SCRIPT_COMMANDS if c in delta)
    every = sum(d.calls for d in delta.values())
    inside = sum(d.calls for c, d in delta.items() if c in STREAM_SCRIPT_COMMANDS)
    return {
        "script_calls_per_s": _per_s(calls, seconds),
        "commands_per_s": _per_s(every, seconds),
        "top_level_per_s": _per_s(every - inside, seconds),
        "script_ms_per_call": round(usec / calls / 1000, 3) if calls else math.nan,
        "script_busy_pct": round(100 * usec / 1e6 / seconds, 2) if seconds > 0 else math.nan,
        "by_command": {cmd: d.calls for cmd, d in sorted(delta.items())},
    }


def _per_s(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else math.nan


def all_masters(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The per-second figures of :func:`master_window` summed over the masters."""
    keys = ("script_calls_per_s", "commands_per_s", "top_level_per_s")
    return {key: round(sum((float(row[key]) for row in rows.values()), 0.0), 1) for key in keys}


def spread(owners: Sequence[str], masters: Sequence[str]) -> dict[str, Any]:
    """How the streams fall on the masters: ``owners`` names each stream's master.

    ``even`` holds when every master owns at least half of an even share (1,000 streams on
    3 masters: 166 each at least; hash slots give about 333 each).
    """
    counts = {master: 0 for master in masters}
    for owner in owners:
        counts[owner] = counts.get(owner, 0) + 1
    floor = len(owners) / max(len(masters), 1) / 2
    return {
        "per_master": counts,
        "min": min(counts.values(), default=0),
        "max": max(counts.values(), default=0),
        "even": bool(masters) and all(counts[m] >= floor for m in masters),
        "unknown_owner": sorted(set(counts) - set(masters)),
    }


def watch_cycle(interval: float, masters: int, max_requests: float) -> float:
    """Seconds between two batches of one connection's watchers when a read takes no time: the
    watch interval, or a batch's cost (one script call per master) over the request budget."""
    return max(interval, masters / max_requests)


def latency_figures(seconds: Sequence[float]) -> dict[str, float | int]:
    """count, p50, p90, p99 (nearest rank), max and mean, in milliseconds."""
    if not seconds:
        return {"count": 0} | dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "max_ms"), math.nan)
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
    }


# --- the table --------------------------------------------------------------------------------


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def render(report: Mapping[str, Any]) -> str:
    """The human-readable table of a report (what ``--json`` prints as JSON)."""
    setup, machine, streams = report["setup"], report["machine"], report["streams"]
    runs, act = report["runs"], report["activation"]
    lines = [
        f"Redis Cluster streams: {streams['count']:,} streams ({streams['measure']}) on "
        f"{len(streams['per_master'])} masters, redis-server {report['redis_version']}, "
        f"{setup['window_s']:g} s windows",
        f"  machine: {machine['cpu_model']}, {machine['nproc']} cores, Python "
        f"{machine['python']}, grpcio {machine['grpcio']}; load average "
        f"{' '.join(machine['loadavg_start'])} at the start, "
        f"{' '.join(report['loadavg_end'])} at the end",
        f"  watch: interval {setup['watch_interval_s'] * 1000:g} ms, at most "
        f"{setup['watch_max_requests']:g} requests/s per connection: a batch every "
        f"{setup['cycle_s'] * 1000:.0f} ms at best, one script call per master",
        "",
        f"  {'per master':<22} {'streams':>7} {'scripts/s':>10} {'ms/call':>8} "
        f"{'busy %':>7} {'commands/s':>11} {'top-level/s':>12} {'bg scripts/s':>13} "
        f"{'bg cmds/s':>10} {'conns':>6}",
    ]
    scaler, noop = runs["scaler"], runs["noop"]
    for name, row in scaler["masters"].items():
        bg = noop["masters"].get(name, {})
        lines.append(
            f"  {name:<22} {streams['per_master'].get(name, 0):>7,} "
            f"{_num(row['script_calls_per_s']):>10} {_num(row['script_ms_per_call'], 2):>8} "
            f"{_num(row['script_busy_pct'], 2):>7} {_num(row['commands_per_s']):>11} "
            f"{_num(row['top_level_per_s']):>12} {_num(bg.get('script_calls_per_s')):>13} "
            f"{_num(bg.get('commands_per_s')):>10} "
            f"{_num(scaler['connections'].get(name)):>6}"
        )
    total, bg_total = scaler["all_masters"], noop["all_masters"]
    lines += [
        f"  {'all masters':<22} {streams['count']:>7,} {_num(total['script_calls_per_s']):>10} "
        f"{'':>8} {'':>7} {_num(total['commands_per_s']):>11} "
        f"{_num(total['top_level_per_s']):>12} {_num(bg_total['script_calls_per_s']):>13} "
        f"{_num(bg_total['commands_per_s']):>10}",
        "  (bg: the same window in the no-op run, other clients of the shared cluster)",
        "",
        f"  {'process':<34} {'CPU %':>6} {'RSS MB':>7} {'all initial in':>15} "
        f"{'core foreign %':>15}",
    ]
    for key, label in (
        ("noop", f"no-op gRPC server, {streams['count']:,} streams"),
        ("scaler_idle", "scaler, no stream open"),
        ("scaler", f"scaler, {streams['count']:,} streams"),
    ):
        run = runs.get(key)
        if run is None:
            continue
        opened = run.get("open_s")
        lines.append(
            f"  {label:<34} {_num(run['cpu_pct']):>6} {_num(run['rss_mb']):>7} "
            f"{'-' if opened is None else f'{opened:.2f} s':>15} "
            f"{_num(run.get('core_foreign_pct')):>15}"
        )
    lines += [
        "",
        f"  {'activation':<34} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  ms",
    ]
    for key, label in (
        ("latency", "XADD -> the stream's true"),
        ("xadd", "the XADD alone"),
        ("back_to_idle", "XREADGROUP+XACK -> IsActive false"),
    ):
        f = act[key]
        lines.append(
            f"  {label:<34} {f['count']:>5} {_num(f['p50_ms'], 2):>8} {_num(f['p90_ms'], 2):>8} "
            f"{_num(f['p99_ms'], 2):>8} {_num(f['max_ms'], 2):>8}"
        )
    lines.append(
        f"  missed (no true within {act['timeout_s']:g} s): {act['missed']}; "
        f"pushes not asked for: {act['unexpected_pushes']}"
    )
    return "\n".join(lines)
