"""The issue's targets, each checked against the figure a run measured (None: not run)."""

from __future__ import annotations

import math
from typing import Any

from bench.keda_load.sizes import Sizes


def lookup(data: dict[str, Any], *path: str) -> Any:
    """``data[path[0]][path[1]]...``, or None where a key is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_targets(results: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Every target of the issue with the measured figure and whether it is met (None: not run)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: Any, met: bool | None, note: str = "") -> None:
        targets.append(
            {"target": name, "goal": target, "measured": measured, "met": met, "note": note}
        )

    def le(value: Any, limit: float) -> bool | None:
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return bool(value <= limit)

    def ge(value: Any, limit: float) -> bool | None:
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return bool(value >= limit)

    act = lookup(results, "activation", "normal") or {}
    full = sizes.activations >= 200
    note = "" if full else f"only {sizes.activations} activations (quick run)"
    for backend, p50_limit, p99_limit in (
        ("redis", 20.0, 60.0),
        ("rabbitmq-amqp", None, 100.0),
        ("rabbitmq-http", None, 100.0),
        ("kafka", None, 500.0),
    ):
        r = act.get(backend) or {}
        if p50_limit is not None:
            add(
                f"activation {backend} p50",
                f"<= {p50_limit:g} ms",
                r.get("p50_ms"),
                le(r.get("p50_ms"), p50_limit),
                note,
            )
        add(
            f"activation {backend} p99",
            f"<= {p99_limit:g} ms",
            r.get("p99_ms"),
            le(r.get("p99_ms"), p99_limit),
            note,
        )
    for backend in ("redis", "rabbitmq-amqp", "rabbitmq-http", "kafka"):
        r = act.get(backend) or {}
        if "broker_requests_per_s" in r:
            add(
                f"watching {backend} ({r.get('queues')} queues)",
                "<= 50 broker requests/s per connection",
                r["broker_requests_per_s"],
                le(r["broker_requests_per_s"], 50),
                r.get("broker_source", ""),
            )
    st = lookup(results, "streams", "normal") or {}
    add(
        f"watching {sizes.streams} streams on {sizes.stream_queues} Redis lists",
        "<= 50 broker requests/s per connection",
        st.get("broker_requests_per_s_per_connection"),
        le(st.get("broker_requests_per_s_per_connection"), 50),
        f"{st.get('tcp_connections')} TCP connection(s)" if st else "",
    )
    poll = lookup(results, "poll") or {}
    for kind in ("poll_round", "hpa_round"):
        per_window = lookup(poll, "normal", kind, "broker_requests_per_queue_per_window")
        add(
            f"{kind.replace('_', ' ')}: {sizes.poll_objects} objects on {sizes.poll_queues} queues",
            "<= 1 broker request per queue per coalescing window",
            per_window,
            le(per_window, 1.0),
            f"{lookup(poll, 'normal', kind, 'broker_requests')} requests over "
            f"{lookup(poll, 'normal', kind, 'ttl_windows')} window(s)"
            if per_window is not None
            else "",
        )
        ratio_value = lookup(poll, "ratios", f"{kind}_broker_requests_naive_over_normal")
        add(
            f"{kind.replace('_', ' ')}: naive / normal broker requests",
            ">= 150",
            ratio_value,
            ge(ratio_value, 150),
        )
    tp = lookup(results, "throughput") or {}
    rps = lookup(tp, "normal", "rpc_per_s")
    p99 = lookup(tp, "normal", "latency_p99_ms")
    add(
        f"GetMetrics throughput, {sizes.tp_objects} objects on {sizes.tp_queues} lists",
        ">= 4,000/s",
        rps,
        ge(rps, 4000),
        f"no-op ceiling {lookup(tp, 'noop', 'rpc_per_s')}/s in the same run" if tp else "",
    )
    add("GetMetrics p99 at that load", "<= 15 ms", p99, le(p99, 15))
    share = lookup(tp, "ratios", "normal_over_noop_rps")
    add(
        "GetMetrics throughput / no-op ceiling",
        ">= 0.85",
        share,
        ge(share, 0.85),
        f"CPU per RPC {lookup(tp, 'normal', 'server_cpu_us_per_rpc')} us vs no-op "
        f"{lookup(tp, 'noop', 'server_cpu_us_per_rpc')} us"
        if tp
        else "",
    )
    rss = st.get("rss_mb")
    add(
        f"RSS with {sizes.streams} streams and {sizes.known_objects} known objects",
        "<= 120 MB",
        rss,
        le(rss, 120),
    )
    return targets
