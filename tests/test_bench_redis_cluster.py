"""The Redis Cluster streams benchmark's pure figures: command statistics per master, the spread,
the watch cycle, activation percentiles and the table.

No Cluster, no process: the benchmark itself (``python -m bench.redis_cluster_streams``) is not a
test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.redis_cluster_figures import (
    Stat,
    all_masters,
    command_stats,
    latency_figures,
    master_window,
    render,
    spread,
    watch_cycle,
)


def test_command_stats_from_redis_py_info():
    info = {
        "cmdstat_evalsha": {"calls": 97, "usec": 5856, "usec_per_call": 60.37},
        "cmdstat_xinfo|groups": {"calls": 4, "usec": 8},
        "errorstat_NOSCRIPT": {"count": 1},
    }
    assert command_stats(info) == {"evalsha": Stat(97, 5856), "xinfo|groups": Stat(4, 8)}


def test_master_window_per_second_with_the_script_internals_and_own_commands_apart():
    before = {"evalsha": Stat(100, 10_000), "xlen": Stat(1000, 500), "info": Stat(5, 100)}
    after = {
        "evalsha": Stat(300, 410_000),  # 200 calls, 400 ms in them
        "eval": Stat(2, 1000),  # first use: 2 calls
        "xlen": Stat(11_000, 5500),  # inside the scripts
        "xinfo|groups": Stat(10_000, 9000),
        "xadd": Stat(20, 40),  # another client's
        "info": Stat(7, 300),  # the benchmark's snapshots
        "replconf": Stat(30, 30),  # the replica's acknowledgements
    }
    row = master_window(before, after, seconds=10.0)
    assert row["script_calls_per_s"] == 20.2
    assert row["commands_per_s"] == (202 + 10_000 + 10_000 + 20) / 10
    assert row["top_level_per_s"] == 22.2  # the scripts and the other client's XADD
    assert row["script_ms_per_call"] == round(401_000 / 202 / 1000, 3)
    assert row["script_busy_pct"] == 4.01
    assert row["by_command"] == {
        "eval": 2,
        "evalsha": 200,
        "xadd": 20,
        "xinfo|groups": 10_000,
        "xlen": 10_000,
    }


def test_master_window_without_script_calls_and_the_sum_over_masters():
    idle = master_window({"xadd": Stat(1, 1)}, {"xadd": Stat(1, 1)}, seconds=5.0)
    assert idle["script_calls_per_s"] == 0.0
    assert math.isnan(idle["script_ms_per_call"])
    assert idle["by_command"] == {}
    rows = {
        "a": {"script_calls_per_s": 13.3, "commands_per_s": 100.0, "top_level_per_s": 13.3},
        "b": {"script_calls_per_s": 13.4, "commands_per_s": 50.5, "top_level_per_s": 14.0},
    }
    assert all_masters(rows) == {
        "script_calls_per_s": 26.7,
        "commands_per_s": 150.5,
        "top_level_per_s": 27.3,
    }


def test_spread_counts_per_master_and_wants_half_an_even_share_each():
    masters = ["m1", "m2", "m3"]
    even = spread(["m1"] * 340 + ["m2"] * 330 + ["m3"] * 330, masters)
    assert even["per_master"] == {"m1": 340, "m2": 330, "m3": 330}
    assert (even["min"], even["max"], even["even"]) == (330, 340, True)
    assert even["unknown_owner"] == []
    skewed = spread(["m1"] * 900 + ["m2"] * 100, masters)
    assert skewed["per_master"]["m3"] == 0
    assert skewed["even"] is False
    stray = spread(["m1", "m2", "m3", "?"], masters)
    assert stray["unknown_owner"] == ["?"]


def test_watch_cycle_is_the_interval_or_the_budget_of_one_call_per_master():
    assert watch_cycle(0.025, 1, 40.0) == 0.025
    assert watch_cycle(0.025, 3, 40.0) == 0.075
    assert watch_cycle(0.2, 3, 40.0) == 0.2


def test_latency_figures_nearest_rank_in_milliseconds():
    figures = latency_figures([i / 1000 for i in range(1, 201)])  # 1..200 ms
    assert figures == {
        "count": 200,
        "p50_ms": 100.0,
        "p90_ms": 180.0,
        "p99_ms": 198.0,
        "max_ms": 200.0,
        "mean_ms": 100.5,
    }
    empty = latency_figures([])
    assert empty["count"] == 0
    assert math.isnan(empty["p99_ms"])


def _report() -> dict[str, Any]:
    row = master_window({}, {"evalsha": Stat(133, 266_000), "xlen": Stat(44_000, 1)}, 10.0)
    idle = master_window({}, {"xadd": Stat(10, 1)}, 10.0)
    masters = {"127.0.0.1:17000": row, "127.0.0.1:17001": row}
    latency = latency_figures([0.04, 0.05, 0.07])
    return {
        "redis_version": "7.0.15",
        "machine": {
            "cpu_model": "AMD EPYC",
            "nproc": 2,
            "python": "3.11.7",
            "grpcio": "1.85.3",
            "loadavg_start": ["0.81", "0.88", "0.82"],
        },
        "loadavg_end": ["1.20", "0.95", "0.85"],
        "setup": {
            "window_s": 10.0,
            "watch_interval_s": 0.025,
            "watch_max_requests": 40.0,
            "cycle_s": 0.05,
        },
        "streams": {
            "count": 1000,
            "measure": "lagCount",
            "per_master": {"127.0.0.1:17000": 510, "127.0.0.1:17001": 490},
        },
        "runs": {
            "noop": {
                "cpu_pct": 0.1,
                "rss_mb": 70.0,
                "open_s": 0.5,
                "masters": dict.fromkeys(masters, idle),
                "all_masters": all_masters({}),
            },
            "scaler": {
                "cpu_pct": 12.5,
                "rss_mb": 95.2,
                "open_s": 2.25,
                "core_foreign_pct": 3.0,
                "masters": masters,
                "all_masters": all_masters(masters),
                "connections": {"127.0.0.1:17000": 1, "127.0.0.1:17001": 1},
            },
        },
        "activation": {
            "latency": latency,
            "xadd": latency_figures([0.0005]),
            "back_to_idle": latency_figures([]),
            "missed": 1,
            "timeout_s": 10.0,
            "unexpected_pushes": 0,
        },
    }


def test_render_shows_every_master_the_background_processes_and_activations():
    text = render(_report())
    assert "1,000 streams (lagCount) on 2 masters, redis-server 7.0.15" in text
    assert "load average 0.81 0.88 0.82 at the start, 1.20 0.95 0.85 at the end" in text
    assert "a batch every 50 ms at best" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    master = lines["127.0.0.1:17000"].split()
    assert master[1:5] == ["510", "13.3", "2.00", "2.66"]  # streams, scripts/s, ms/call, busy
    assert master[-3:] == ["0.0", "1.0", "1"]  # background scripts/s, background commands/s
    assert lines["all"].split()[2:4] == ["1,000", "26.6"]
    assert "no-op gRPC server, 1,000 streams" in text
    assert "scaler, no stream open" not in text  # not measured in this report
    scaler = next(ln for ln in text.splitlines() if "scaler, 1,000 streams" in ln).split()
    assert scaler[-5:] == ["12.5", "95.2", "2.25", "s", "3.0"]  # CPU, RSS, open, foreign load
    noop = next(ln for ln in text.splitlines() if "no-op gRPC server" in ln).split()
    assert noop[-1] == "-"  # the core's foreign load was not measured (not pinned)
    activation = next(ln for ln in text.splitlines() if "XADD -> the stream's true" in ln)
    assert activation.split()[-5:] == ["3", "50.00", "70.00", "70.00", "70.00"]
    assert "missed (no true within 10 s): 1" in text


@pytest.mark.parametrize("value", [math.nan, None])
def test_render_shows_a_missing_figure_as_a_dash(value):
    report = _report()
    report["runs"]["scaler"]["masters"]["127.0.0.1:17000"]["script_ms_per_call"] = value
    line = next(ln for ln in render(report).splitlines() if "127.0.0.1:17000" in ln)
    assert line.split()[3] == "-"
