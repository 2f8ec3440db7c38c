"""Run ghz (the Go gRPC load generator) against a server and read its report.

ghz is built by ``scripts/ghz.sh`` (``go install`` through the Go module proxy) into
``~/.cache/keda-queue-scaler/bin/``. One ghz process drives one method; KEDA's call pattern is
made of several runs (sequential phases for one poll round, side-by-side processes for a
sustained load). The request data is a JSON list (``--data-file``): ghz sends element
``i mod len`` as request number ``i``, so a list of N ScaledObjects spreads the load over all.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.ghz_report import GhzReport, parse_ghz
from bench.harness.paths import REPO_ROOT
from bench.harness.processes import pinned

PROTO = REPO_ROOT / "protos" / "externalscaler.proto"
SERVICE = "externalscaler.ExternalScaler"


def find_ghz(explicit: str | None = None) -> Path:
    """The ghz binary: ``explicit``, else the one ``scripts/ghz.sh`` installs (building it once).

    :raises RuntimeError: saying how to get it when neither works
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise RuntimeError(f"--ghz {explicit}: no such file")
        return path
    script = REPO_ROOT / "scripts" / "ghz.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        on_path = shutil.which("ghz")
        if on_path:
            return Path(on_path)
        raise RuntimeError(
            f"scripts/ghz.sh failed (exit {done.returncode}): {done.stderr.strip()[-800:]}"
        )
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class GhzLoad:
    """One ghz run.

    :param method: ExternalScaler method (``GetMetrics``, ``IsActive``, ``GetMetricSpec``)
    :param data: JSON list of request messages, one per ScaledObject
    :param concurrency: requests in flight (ghz workers), all on one HTTP/2 connection as KEDA
    :param total: number of requests (``--total``), or
    :param duration: seconds to run (``--duration``; requests in flight at the end not counted)
    :param rps: rate limit (``--rps``), None for as fast as the server answers
    :param deadline: per-request deadline in seconds (sent as ``grpc-timeout``); None for none,
        as KEDA's polling loop (its HPA path has about 3 s)
    """

    method: str
    data: Path
    concurrency: int
    total: int | None = None
    duration: float | None = None
    rps: int | None = None
    deadline: float | None = None

    def argv(self, ghz: Path, target: str, output: Path) -> list[str]:
        args = [
            str(ghz),
            "--insecure",
            "--proto",
            str(PROTO),
            "--call",
            f"{SERVICE}.{self.method}",
            "--data-file",
            str(self.data),
            "--concurrency",
            str(self.concurrency),
            "--connections",
            "1",
            "--timeout",
            f"{self.deadline:g}s" if self.deadline else "0",
            "--format",
            "json",
            "--output",
            str(output),
        ]
        if self.duration is not None:
            args += ["--duration", f"{self.duration:g}s", "--duration-stop", "ignore"]
        else:
            args += ["--total", str(self.total or 1)]
        if self.rps:
            args += ["--rps", str(self.rps)]
        return [*args, target]


async def run_ghz(
    ghz: Path, target: str, load: GhzLoad, output: Path, cpu: int | None
) -> GhzReport:
    """Run ghz once (pinned to ``cpu`` when given) and parse its report.

    :raises RuntimeError: ghz failed to run (its stderr in the message)
    """
    proc = await asyncio.create_subprocess_exec(
        *pinned(load.argv(ghz, target, output), cpu),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await proc.communicate()
    report = await asyncio.to_thread(_read_report, output)
    if proc.returncode != 0 or report is None:
        text = (stderr or stdout).decode(errors="replace").strip()
        raise RuntimeError(f"ghz {load.method} exited {proc.returncode}: {text[-800:]}")
    return parse_ghz(report, load.method)


def _read_report(output: Path) -> dict[str, Any] | None:
    if not output.exists():
        return None
    report: dict[str, Any] = json.loads(output.read_text())
    output.unlink()
    return report


def write_data(path: Path, messages: list[dict[str, Any]]) -> Path:
    """Write a ghz ``--data-file`` (a JSON list of messages, in protobuf JSON field names)."""
    path.write_text(json.dumps(messages, separators=(",", ":")))
    return path
