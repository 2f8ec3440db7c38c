"""The alerting rules (deploy/helm/keda-queue-scaler/files/alerts.yaml) load and fire as
documented: ``promtool check rules`` and ``promtool test rules`` with tests/deploy/alerts_test.yaml;
the compose demo's Prometheus and the chart's PrometheusRule read that one file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import ROOT
from tests.integration.conftest import unavailable

RULES = ROOT / "deploy" / "helm" / "keda-queue-scaler" / "files" / "alerts.yaml"
RULE_TESTS = ROOT / "tests" / "deploy" / "alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = os.environ.get("SCALER_TEST_PROMTOOL") or shutil.which("promtool")
    if not found:
        unavailable("promtool is not installed (scripts/brokers.sh start promtool)")
    return found


def _run(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_rules_load(promtool: str) -> None:
    assert "SUCCESS: 4 rules found" in _run(promtool, "check", "rules", str(RULES), cwd=ROOT)


def test_rules_fire_as_their_unit_tests_say(promtool: str, tmp_path: Path) -> None:
    # the test file names the rules file beside it
    shutil.copy(RULES, tmp_path / "alerts.yaml")
    shutil.copy(RULE_TESTS, tmp_path / "alerts_test.yaml")
    assert "SUCCESS" in _run(promtool, "test", "rules", "alerts_test.yaml", cwd=tmp_path)


def test_every_rule_has_a_unit_test_and_the_compose_prometheus_loads_the_file() -> None:
    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert rules == tested
    prometheus = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert (
        "./deploy/helm/keda-queue-scaler/files/alerts.yaml:/etc/prometheus/alerts.yaml:ro"
        in compose
    )
