"""Where the checkout is: the repository root and the benchmark's results folder."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: every figure, log and profile a benchmark writes (gitignored)
RESULTS = REPO_ROOT / "bench" / "results"
