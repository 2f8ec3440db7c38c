"""The JSON report of a run: the machine it ran on, strict JSON, the file."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import grpc

from bench.harness.procfs import cpu_model, loadavg, ram_gib


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, memory, kernel, Python, grpcio, load."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gib": ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "loadavg_start": loadavg(),
    }


def jsonable(value: Any) -> Any:
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write_report(output: Path, report: dict[str, Any]) -> Path:
    """Write the JSON report (strict JSON: NaN and infinities as null)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(jsonable(report), indent=2) + "\n")
    return output
