"""The dependency direction of DESIGN.md section 2 is enforced: the import-linter contracts in
pyproject.toml hold for the tree, and each kind of violation makes ``lint-imports`` fail.

Each violation is made in a copy of ``scaler/``, so the tree itself is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # the copy comes first on the path, so grimp reads it instead of the installed tree
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        pytest.param(
            "scaler/server.py",
            "import redis",
            "redis-py only under backends.redis",
            id="a broker library outside its backend",
        ),
        pytest.param(
            "scaler/backends/redis/trigger.py",
            "import scaler.engine",
            "backends import only backends.base",
            id="a backend importing the engine",
        ),
        pytest.param(
            "scaler/backends/redis/client.py",
            "import kafka",
            "kafka-python only under backends.kafka",
            id="a backend importing another backend's library",
        ),
        pytest.param(
            "scaler/engine.py",
            "import scaler.server",
            "the service points one way",
            id="the engine importing the server",
        ),
        pytest.param(
            "scaler/tools/check.py",
            "import scaler.server",
            "the tools never import the server",
            id="a tool importing the server",
        ),
        pytest.param(
            "scaler/watch.py",
            "import grpc",
            "gRPC and the generated code only in server, app and the tools' client",
            id="gRPC below the server",
        ),
        pytest.param(
            "scaler/tools/check.py",
            "import ruamel.yaml",
            "ruamel.yaml only in migrate's round-trip modules",
            id="round-trip YAML outside migrate",
        ),
        pytest.param(
            "scaler/engine.py",
            "import prometheus_client",
            "prometheus_client only in metrics and app",
            id="Prometheus in the engine",
        ),
    ],
)
def test_a_violation_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "scaler", tmp_path / "scaler", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate violation\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
