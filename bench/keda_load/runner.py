"""One run of the KEDA load benchmark: set-up, the chosen scenarios in turn, the report.

A scenario that fails is reported and the run carries on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.harness.ghz import find_ghz
from bench.harness.paths import REPO_ROOT
from bench.harness.procfs import loadavg
from bench.harness.scaler_facts import default_timing
from bench.keda_load.report.output import machine, write_report
from bench.keda_load.report.tables import summary_tables
from bench.keda_load.report.targets import check_targets
from bench.keda_load.scenarios import SCENARIOS, Scenario
from bench.keda_load.workbench import LOAD_CPU, Workbench


async def run(args: argparse.Namespace) -> int:
    """Measure ``args.scenarios``, print the tables, write the JSON; the exit status."""
    started = time.perf_counter()
    bench = Workbench(args)
    bench.say(f"workdir {bench.workdir}; pinning {'on' if bench.pin else 'OFF'}")
    if bench.pin:
        os.sched_setaffinity(0, {LOAD_CPU})
    bench.ghz = find_ghz(args.ghz)
    bench.say(f"ghz: {bench.ghz}")
    await bench.redis.start()
    bench.say(f"redis {bench.redis.version} at {bench.redis.address}")
    results: dict[str, Any] = {}
    try:
        for name in args.scenarios:
            await _scenario(bench, name, SCENARIOS[name], results)
    finally:
        await bench.redis.close()
    targets = check_targets(results, bench.sizes)
    report = {
        "command": " ".join(
            shlex.quote(a)
            for a in [Path(sys.executable).name, "-m", "bench.keda_load", *sys.argv[1:]]
        ),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine(), "loadavg_end": loadavg()},
        "setup": _setup(bench),
        "sizes": vars(bench.sizes),
        "modes": bench.modes,
        "scenarios": results,
        "targets": targets,
        "errors": bench.errors,
        "warnings": bench.warnings,
        "server_stops": bench.stops,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    output = write_report(Path(args.output), report)
    print()
    print(summary_tables(report))
    print(f"\nwritten to {output}; {report['elapsed_s']:.0f}s")
    if bench.errors:
        print(f"\n{len(bench.errors)} scenario error(s):", file=sys.stderr)
        for error in bench.errors:
            print(f"  {error['scenario']}: {error['error']}", file=sys.stderr)
        print(
            "(a broker that cannot be reached: `make brokers` starts them, "
            "`scripts/brokers.sh env` prints their addresses; server logs are in "
            f"{bench.logs.relative_to(REPO_ROOT)}/)",
            file=sys.stderr,
        )
        return 1
    if args.strict and any(t["met"] is False for t in targets):
        return 1
    shutil.rmtree(bench.workdir, ignore_errors=True)
    return 0


async def _scenario(bench: Workbench, name: str, body: Scenario, results: dict[str, Any]) -> None:
    """Run one scenario into ``results[name]``; a failure goes to the run's errors."""
    bench.say(f"scenario {name}: start")
    started = time.perf_counter()
    try:
        results[name] = await body(bench)
        results[name]["elapsed_s"] = round(time.perf_counter() - started, 1)
        bench.say(f"scenario {name}: done in {time.perf_counter() - started:.0f}s")
    except Exception as err:  # noqa: BLE001 - every failure is reported, the run goes on
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        bench.errors.append({"scenario": name, "error": detail})
        bench.say(f"scenario {name}: FAILED: {detail}")
        if bench.args.verbose:
            traceback.print_exc()


def _setup(bench: Workbench) -> dict[str, Any]:
    """Where everything ran, for the report."""
    brokers = bench.brokers
    return {
        "server_cpu": bench.server_cpu,
        "load_cpu": bench.load_cpu,
        "ghz": str(bench.ghz),
        "redis": f"{bench.redis.version} at {bench.redis.address}"
        + (" (private, pinned with the load)" if not bench.args.redis_url else ""),
        "kafka": brokers.kafka,
        "rabbitmq": f"{brokers.amqp.split('@')[-1]} (AMQP), "
        f"{brokers.rabbit_http.split('@')[-1]} (HTTP)",
        "scaler_defaults": default_timing(),
    }
