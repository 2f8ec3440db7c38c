"""``--profile``: where the GetMetrics path spends its time.

:func:`handler_profile` runs ``bench.handler_profile`` on the server's core (the handler alone,
timed and under cProfile); :func:`py_spy_profile` samples the serving scaler with py-spy under
the throughput load (an extra run, not measured) and :func:`summarize_profile` ranks its frames.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bench.harness.ghz import GhzLoad
from bench.harness.paths import REPO_ROOT, RESULTS
from bench.harness.processes import pinned
from bench.keda_load.servers import Server
from bench.keda_load.workbench import Workbench


async def handler_profile(bench: Workbench) -> dict[str, Any]:
    """``bench.handler_profile`` pinned to the server's core: the scaler's own Python per
    GetMetrics, without gRPC, and where it goes (cProfile)."""
    s = bench.sizes
    bench.say("  throughput: the handler alone, timed and under cProfile (bench.handler_profile)")
    argv = [sys.executable, "-m", "bench.handler_profile"]
    argv += ["--redis-address", bench.redis.address, "--objects", str(s.tp_objects)]
    argv += ["--queues", str(s.tp_queues)]
    proc = await asyncio.create_subprocess_exec(
        *pinned(argv, bench.server_cpu),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        return {"failed": stderr.decode(errors="replace")[-800:]}
    result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return result


async def py_spy_profile(bench: Workbench, server: Server, load: GhzLoad) -> dict[str, Any]:
    """A py-spy profile of the scaler under the same load (a separate run, not measured)."""
    py_spy = bench.args.py_spy or shutil.which("py-spy")
    if not py_spy:
        return {"skipped": "py-spy not found (pip install py-spy, or --py-spy PATH)"}
    raw = RESULTS / "keda_load_profile.txt"
    seconds = max(2, int(load.duration or 10) - 2)
    bench.say(f"  throughput normal: py-spy profile for {seconds}s (extra run)")
    ghz_task = asyncio.ensure_future(bench.ghz_run(server, load))
    await asyncio.sleep(1.0)
    argv = [py_spy, "record", "--pid", str(server.pid), "--duration", str(seconds)]
    argv += ["--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"]
    proc = await asyncio.create_subprocess_exec(
        *pinned(argv, bench.load_cpu),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    report = await ghz_task
    if proc.returncode != 0 or not raw.exists():
        return {"failed": output.decode(errors="replace")[-400:]}
    return {
        "raw": str(raw.relative_to(REPO_ROOT)),
        "rpc_per_s_while_profiled": round(report.rps, 1),
        **summarize_profile(raw),
    }


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the hottest frames of a py-spy ``--format raw`` file."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n

    def best(counts: dict[str, int]) -> list[list[Any]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[round(100 * n / total, 1), frame] for frame, n in ranked]

    return (
        {"samples": total, "self_pct": best(own), "inclusive_pct": best(inclusive)}
        if total
        else {"samples": 0}
    )
