"""The tables a run prints: load figures, activation latencies, ratios, targets, the profile."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.keda_load.report.targets import lookup


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            if math.isinf(value):
                return "inf"
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h)
        for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in text_rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def summary_tables(report: dict[str, Any]) -> str:
    """The stdout tables: load figures, activation, ratios, targets."""
    scenarios = report["scenarios"]
    parts = []
    rows = []

    def row(name: str, mode: str, r: dict[str, Any] | None, broker: Any, extra: str = "") -> None:
        if not r:
            return
        foreign = r.get("server_core_foreign_pct") or (r.get("window") or {}).get(
            "server_core_foreign_pct"
        )
        if foreign and foreign >= 10:
            extra += f"; core 0 shared: {foreign:g}% other load"
        rows.append(
            [
                name,
                mode,
                r.get("rpcs"),
                r.get("rpc_per_s"),
                r.get("latency_p50_ms"),
                r.get("latency_p99_ms"),
                r.get("latency_max_ms"),
                sum(v for k, v in (r.get("statuses") or {}).items() if k != "OK")
                if "statuses" in r
                else None,
                broker,
                r.get("server_cpu_pct"),
                r.get("rss_mb"),
                extra,
            ]
        )

    poll = scenarios.get("poll", {})
    tp = scenarios.get("throughput", {})
    st = scenarios.get("streams", {})
    for mode in ("normal", "naive"):
        if mode in poll:
            p = poll[mode]
            row(
                "poll round",
                mode,
                p["poll_round"],
                p["poll_round"]["broker_requests"],
                f"{p['poll_round']['ttl_windows']} TTL window(s)",
            )
            row(
                "HPA round",
                mode,
                p["hpa_round"],
                p["hpa_round"]["broker_requests"],
                f"{p['hpa_round']['ttl_windows']} TTL window(s)",
            )
            su = p["sustained"]
            row(
                "sustained",
                mode,
                su,
                f"{su['broker_requests_per_s']}/s",
                f"{su['streams']} streams, {su['offered_rpc_per_s']} RPC/s offered",
            )
    if "noop" in tp:
        row(
            "GetMetrics max",
            "no-op",
            tp["noop"],
            None,
            f"c={tp['concurrency']}, {tp['noop']['server_cpu_us_per_rpc']} us CPU/RPC",
        )
    for mode in ("normal", "naive"):
        if mode in tp:
            row(
                "GetMetrics max",
                mode,
                tp[mode],
                f"{tp[mode]['broker_requests_per_s']}/s",
                f"c={tp['concurrency']}, {tp[mode]['server_cpu_us_per_rpc']} us CPU/RPC, "
                f"load gen {tp[mode]['load_generator_cpu_pct']}% CPU",
            )
    for mode in ("normal", "naive"):
        if mode in st:
            r = st[mode]
            rows.append(
                [
                    "streams",
                    mode,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    f"{r['broker_requests_per_s']}/s",
                    r["server_cpu_pct"],
                    r["rss_mb"],
                    f"{st['streams']} streams, {st['known_objects']} known, "
                    f"{r['tcp_connections']} TCP conn",
                ]
            )
    if rows:
        parts.append(
            render(
                [
                    "scenario",
                    "mode",
                    "RPCs",
                    "RPC/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "errors",
                    "broker req",
                    "srv CPU%",
                    "RSS MB",
                    "notes",
                ],
                rows,
            )
        )
    act = scenarios.get("activation", {})
    act_rows = []
    for mode in ("normal", "naive"):
        for backend, r in (act.get(mode) or {}).items():
            if "error" in r:
                act_rows.append([backend, mode, None, None, None, None, None, r["error"][:60]])
                continue
            act_rows.append(
                [
                    backend,
                    mode,
                    r["count"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["max_ms"],
                    r["broker_requests_per_s"],
                    f"{r['queues']} queues, watch {r['watch_interval_ms']:g} ms",
                ]
            )
    if act_rows:
        parts.append(
            "Activation latency (enqueue into an empty queue -> `true` on the stream)\n"
            + render(
                ["backend", "mode", "n", "p50 ms", "p99 ms", "max ms", "broker req/s", "notes"],
                act_rows,
            )
        )
    ratio_rows = []
    for name, section in (("poll", poll), ("throughput", tp), ("streams", st)):
        for key, value in (section.get("ratios") or {}).items():
            ratio_rows.append([name, key, value])
    if ratio_rows:
        parts.append("Ratios\n" + render(["scenario", "ratio", "value"], ratio_rows))
    target_rows = [
        [
            t["target"],
            t["goal"],
            t["measured"],
            "not run" if t["met"] is None else t["met"],
            t["note"] if len(t["note"]) <= 60 else t["note"][:57] + "...",
        ]
        for t in report["targets"]
    ]
    parts.append("Targets\n" + render(["target", "goal", "measured", "met", "note"], target_rows))
    handler = tp.get("handler_profile") or {}
    if "scaler_us_per_call" in handler:
        lines = [
            "Profile (bench.handler_profile: GetMetrics awaited directly, no gRPC, on core 0)",
            f"  scaler handler {handler['scaler_us_per_call']} us/call, no-op "
            f"{handler['noop_us_per_call']} us/call; under ghz the server spends "
            f"{lookup(tp, 'normal', 'server_cpu_us_per_rpc')} us CPU per RPC, the no-op "
            f"{lookup(tp, 'noop', 'server_cpu_us_per_rpc')} us",
            "  most own time (cProfile, % of the profiled loop):",
        ]
        lines += [
            f"    {pct:5.1f}%  {calls:>7}  {where}"
            for pct, calls, where in handler["tottime_pct"][:10]
        ]
        parts.append("\n".join(lines))
    for warning in report.get("warnings", []):
        parts.append(f"warning: {warning}")
    return "\n\n".join(parts)
