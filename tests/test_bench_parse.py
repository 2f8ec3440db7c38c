"""The load benchmark's pure helpers: percentiles, ghz reports, broker and scaler counters.

No ghz, no broker, no timing: the benchmark itself (``python -m bench.keda_load``) is not a test.
"""

from __future__ import annotations

import math

import pytest

from bench.harness.broker_counts import command_calls, redis_requests
from bench.harness.ghz_report import merge_reports, parse_ghz
from bench.harness.procfs import core_busy, cpu_ticks
from bench.harness.prometheus import parse_prometheus, series_sum
from bench.harness.stats import latency_summary, percentile, ratio
from bench.keda_load.objects import redis_objects
from bench.keda_load.report.output import jsonable
from bench.keda_load.report.tables import render
from bench.keda_load.report.targets import check_targets
from bench.keda_load.sizes import Sizes


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 201)]  # 1..200
    assert percentile(values, 50) == 100.0
    assert percentile(values, 99) == 198.0
    assert percentile(values, 100) == 200.0
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(reversed(values)), 50) == 100.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, 0)


def test_latency_summary_in_milliseconds():
    summary = latency_summary([0.001, 0.002, 0.003, 0.1])
    assert summary == {
        "count": 4,
        "p50_ms": 2.0,
        "p99_ms": 100.0,
        "max_ms": 100.0,
        "mean_ms": 26.5,
    }
    assert latency_summary([])["count"] == 0


GHZ_REPORT = {
    "options": {"call": "externalscaler.ExternalScaler.GetMetrics"},
    "count": 4,
    "total": 2_000_000_000,
    "rps": 2.0,
    "statusCodeDistribution": {"OK": 3, "Unavailable": 1},
    "errorDistribution": {"rpc error: code = Unavailable desc = redis down": 1},
    "latencyDistribution": [{"percentage": 50, "latency": 2_000_000}],
    "details": [
        {"timestamp": "x", "latency": 1_000_000, "error": "", "status": "OK"},
        {"timestamp": "x", "latency": 2_000_000, "error": "", "status": "OK"},
        {"timestamp": "x", "latency": 3_000_000, "error": "", "status": "OK"},
        {"timestamp": "x", "latency": 9_000_000, "error": "down", "status": "Unavailable"},
    ],
}


def test_parse_ghz_keeps_ok_latencies_in_seconds():
    report = parse_ghz(GHZ_REPORT)
    assert report.call == "externalscaler.ExternalScaler.GetMetrics"
    assert report.count == 4
    assert report.wall_seconds == 2.0
    assert report.latencies == [0.001, 0.002, 0.003]
    assert report.ok == 3
    assert report.failed == 1


def test_parse_ghz_counts_statuses_from_details_when_missing():
    raw = {**GHZ_REPORT, "statusCodeDistribution": None}
    assert parse_ghz(raw, "IsActive").statuses == {"OK": 3, "Unavailable": 1}


def test_merge_reports_over_the_callers_wall_time():
    a = parse_ghz(GHZ_REPORT, "GetMetrics")
    b = parse_ghz(GHZ_REPORT, "IsActive")
    merged = merge_reports([a, b], wall_seconds=4.0)
    assert merged["rpcs"] == 8
    assert merged["ok"] == 6
    assert merged["rpc_per_s"] == 2.0
    assert merged["latency_p50_ms"] == 2.0
    assert merged["latency_max_ms"] == 3.0
    assert merged["statuses"] == {"OK": 6, "Unavailable": 2}


def test_redis_requests_leave_out_script_internals_and_the_benchmark():
    before = {"evalsha": 100, "type": 500, "llen": 500, "lpush": 3, "info": 9}
    after = {"evalsha": 110, "eval": 1, "type": 700, "llen": 700, "lpush": 5, "info": 10}
    counted = redis_requests(before, after)
    assert counted["requests"] == 11
    assert counted["by_command"] == {"eval": 1, "evalsha": 10}
    assert counted["script_internal_calls"] == 400


def test_command_calls_from_redis_py_info():
    info = {
        "cmdstat_evalsha": {"calls": 7, "usec": 70},
        "cmdstat_client|list": {"calls": 1},
        "other": 3,
    }
    assert command_calls(info) == {"evalsha": 7, "client|list": 1}


METRICS_TEXT = """\
# HELP keda_queue_scaler_coalescing_total Measurement lookups
# TYPE keda_queue_scaler_coalescing_total counter
keda_queue_scaler_coalescing_total{result="hit"} 390.0
keda_queue_scaler_coalescing_total{result="miss"} 10.0
keda_queue_scaler_backend_request_duration_seconds_count{backend="redis",outcome="ok"} 12.0
keda_queue_scaler_backend_request_duration_seconds_count{backend="redis",outcome="timeout"} 2.0
keda_queue_scaler_backend_request_duration_seconds_count{backend="kafka",outcome="ok"} 5.0
keda_queue_scaler_watchers 100.0
keda_queue_scaler_last_value{backend="redis",resource="a \\"quoted\\" key"} 3.0
"""


def test_prometheus_text_and_sums():
    samples = parse_prometheus(METRICS_TEXT)
    name = "keda_queue_scaler_backend_request_duration_seconds_count"
    assert series_sum(samples, name, backend="redis") == 14.0
    assert series_sum(samples, name, backend="redis", outcome="ok") == 12.0
    assert series_sum(samples, name) == 19.0
    assert series_sum(samples, "keda_queue_scaler_watchers") == 100.0
    assert series_sum(samples, "keda_queue_scaler_coalescing_total", result="hit") == 390.0
    assert series_sum(samples, "keda_queue_scaler_last_value") == 3.0
    # a declared family with no sample matching is 0; a name of no family is an error
    assert series_sum(samples, "keda_queue_scaler_coalescing_total", result="shared") == 0.0
    with pytest.raises(KeyError, match="missing"):
        series_sum(samples, "missing")


def test_cpu_ticks_with_a_process_name_holding_spaces_and_parentheses():
    # fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    #         utime stime ...
    stat = "4242 (python (x) y) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0"
    assert cpu_ticks(stat) == 168


def test_core_busy_reads_one_core():
    stat = "cpu  1 2 3 4 5 0 0 0 0 0\ncpu0 10 0 5 80 5 0 0 0 0 0\ncpu1 1 1 1 1 1 0 0 0 0 0\n"
    assert core_busy(stat, 0) == (15, 100)
    with pytest.raises(ValueError, match="cpu7"):
        core_busy(stat, 7)


def test_ratio():
    assert ratio(2000, 10) == 200.0
    assert ratio(1, 3) == 0.33
    assert math.isinf(ratio(5, 0))
    assert math.isnan(ratio(0, 0))
    assert math.isnan(ratio(math.nan, 1))


def test_objects_are_distinct_metadata_spread_over_the_queues():
    objects = redis_objects(1000, [f"Q{j}" for j in range(10)], "127.0.0.1:6379", "t")
    assert len({frozenset(o.metadata.items()) for o in objects}) == 1000
    assert {o.metadata["listName"] for o in objects} == {f"Q{j}" for j in range(10)}
    first = objects[0]
    assert first.metric == "redis-Q0"  # KEDA's name keeps the case
    assert first.metrics_request(hpa=False)["metricName"] == "redis-Q0"
    assert first.metrics_request(hpa=True)["metricName"] == "redis-q0"  # the HPA lower-cases it
    assert first.metrics_request(hpa=False)["scaledObjectRef"]["namespace"] == "bench"


def test_jsonable_and_render():
    assert jsonable({"a": [math.nan, 1.0, math.inf], "b": (2,)}) == {
        "a": [None, 1.0, None],
        "b": [2],
    }
    text = render(["x", "value"], [["a", 1234.5], ["b", math.nan], ["c", True]])
    assert text.splitlines()[0].split() == ["x", "value"]
    assert "1,234.5" in text
    assert text.splitlines()[3].split() == ["b", "-"]


def test_targets_of_an_empty_run_are_not_run_and_a_met_figure_is_met():
    assert all(t["met"] is None for t in check_targets({}, Sizes()))
    results = {
        "streams": {"normal": {"broker_requests_per_s_per_connection": 40.0, "rss_mb": 90.0}}
    }
    met = {t["target"]: t["met"] for t in check_targets(results, Sizes())}
    assert met["RSS with 1000 streams and 10000 known objects"] is True
    assert met["watching 1000 streams on 100 Redis lists"] is True
