"""The Helm chart deploy/helm/keda-queue-scaler: lint, render, validate every object.

Helm comes from scripts/helm.sh, which builds it once with the machine's Go from the Go module
proxy (a couple of minutes on a fresh machine, cached afterwards): hence the long timeout.
The chart is rendered with its defaults and with ci/all-values.yaml (every toggle on), as the
release `keda-queue-scaler` in namespace keda, and every object is validated against the
Kubernetes schemas and checked like the plain manifests of deploy/k8s.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import scaler
from tests.deploy.support import (
    ROOT,
    SCALER_ADDRESS,
    check_headless_service,
    check_network_policy,
    check_pdb,
    check_scaler_deployment,
    check_service_monitor,
    container_env,
    describe,
    is_custom_resource,
    literal_env,
    load_documents,
    load_settings,
    only,
    setting_field_names,
    snake_case,
    unknown_env,
    validate_kubernetes,
)

pytestmark = pytest.mark.timeout(900)

CHART = ROOT / "deploy" / "helm" / "keda-queue-scaler"
ALL_VALUES = CHART / "ci" / "all-values.yaml"
RELEASE, NAMESPACE = "keda-queue-scaler", "keda"
KUBE_VERSION = "1.31.0"


@pytest.fixture(scope="session")
def helm() -> Path:
    result = subprocess.run(
        [str(ROOT / "scripts" / "helm.sh")],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert result.returncode == 0, f"scripts/helm.sh failed:\n{result.stderr[-4000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _template(helm: Path, *args: str) -> list[dict[str, Any]]:
    result = _helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
        *args,
    )
    assert result.returncode == 0, result.stderr
    return load_documents(result.stdout)


@pytest.fixture(scope="session")
def default_objects(helm: Path) -> list[dict[str, Any]]:
    return _template(helm)


@pytest.fixture(scope="session")
def all_objects(helm: Path) -> list[dict[str, Any]]:
    return _template(helm, "--values", str(ALL_VALUES))


@pytest.mark.parametrize("values", [None, ALL_VALUES], ids=["default", "all-toggles"])
def test_helm_lint_strict(helm: Path, values: Path | None):
    extra = ["--values", str(values)] if values else []
    result = _helm(helm, "lint", "--strict", str(CHART), *extra)
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_version_follows_the_package():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == scaler.__version__


def _validate_all(objects: list[dict[str, Any]]) -> None:
    for doc in objects:
        assert doc["metadata"]["namespace"] in (NAMESPACE, "monitoring"), describe(doc)
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, only(objects, "Service"))
        elif doc["kind"] == "PrometheusRule":
            # a custom resource of the Prometheus Operator: its rules are promtool-tested
            # (test_alerts.py) and compared with the alerts file below
            assert doc["apiVersion"] == "monitoring.coreos.com/v1", describe(doc)
        else:
            assert not is_custom_resource(doc), describe(doc)
            validate_kubernetes(doc)


def test_default_render_is_valid_and_hardened(default_objects: list[dict[str, Any]]):
    kinds = sorted(doc["kind"] for doc in default_objects)
    assert kinds == [
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    _validate_all(default_objects)
    deployment, service = only(default_objects, "Deployment"), only(default_objects, "Service")
    check_scaler_deployment(deployment)
    check_headless_service(service, deployment)
    check_pdb(only(default_objects, "PodDisruptionBudget"), deployment)
    check_network_policy(only(default_objects, "NetworkPolicy"), deployment)
    account = only(default_objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"keda-queue-scaler:{scaler.__version__}"
    meta = service["metadata"]
    grpc = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert f"{meta['name']}.{meta['namespace']}.svc.cluster.local:{grpc}" == SCALER_ADDRESS


def test_all_toggles_render_is_valid(all_objects: list[dict[str, Any]]):
    kinds = sorted(doc["kind"] for doc in all_objects)
    assert kinds == [
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    _validate_all(all_objects)
    deployment = only(all_objects, "Deployment")
    check_scaler_deployment(deployment, tls=True)
    check_headless_service(only(all_objects, "Service"), deployment)
    check_pdb(only(all_objects, "PodDisruptionBudget"), deployment)
    check_network_policy(only(all_objects, "NetworkPolicy"), deployment)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.example.com/keda-queue-scaler@sha256:")


def test_the_prometheus_rule_carries_the_alerts_file(all_objects: list[dict[str, Any]]):
    rule = only(all_objects, "PrometheusRule")
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["spec"] == alerts  # one file for the chart and the compose demo
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_tls_and_profiles_are_mounted_secret_files(all_objects: list[dict[str, Any]]):
    deployment = only(all_objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    settings = load_settings(container.get("args", []), literal_env(container))
    values = yaml.safe_load(ALL_VALUES.read_text())
    expected = {
        settings.tls_cert: values["tls"]["existingSecret"],
        settings.tls_key: values["tls"]["existingSecret"],
        settings.tls_client_ca: values["tls"]["clientCA"]["existingSecret"],
        settings.profiles: values["profiles"]["existingSecret"],
    }
    for path, secret_name in expected.items():
        folder, file = str(Path(path).parent), Path(path).name
        mount = mounts[folder]
        assert mount["readOnly"] is True
        assert "subPath" not in mount, "a subPath mount never sees a renewed Secret"
        secret = secrets[mount["name"]]
        assert secret["secretName"] == secret_name
        assert file in {item["path"] for item in secret["items"]}
    assert settings.require_profiles is True
    # the Secret files are readable by the scaler's group only
    assert pod["securityContext"]["fsGroup"] == container["securityContext"]["runAsGroup"]


def test_default_render_matches_the_plain_manifests(default_objects: list[dict[str, Any]]):
    """deploy/k8s and the chart's defaults must not drift apart."""
    plain = [
        doc
        for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for doc in load_documents(path)
    ]
    chart_pod = only(default_objects, "Deployment")["spec"]["template"]["spec"]
    plain_pod = only(plain, "Deployment")["spec"]["template"]["spec"]
    assert chart_pod["securityContext"] == plain_pod["securityContext"]
    assert chart_pod["terminationGracePeriodSeconds"] == plain_pod["terminationGracePeriodSeconds"]
    assert chart_pod["volumes"] == plain_pod["volumes"]
    (chart_container,) = chart_pod["containers"]
    (plain_container,) = plain_pod["containers"]
    for key in (
        "ports",
        "resources",
        "securityContext",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "volumeMounts",
    ):
        assert chart_container[key] == plain_container[key], key
    chart_settings = load_settings(chart_container.get("args", []), literal_env(chart_container))
    plain_settings = load_settings(plain_container.get("args", []), literal_env(plain_container))
    assert chart_settings.log_format == plain_settings.log_format == "json"
    service = only(default_objects, "Service")["spec"]
    assert service["ports"] == only(plain, "Service")["spec"]["ports"]
    assert service["clusterIP"] == only(plain, "Service")["spec"]["clusterIP"]


@pytest.mark.parametrize("values", [CHART / "values.yaml", ALL_VALUES], ids=lambda p: p.name)
def test_settings_values_name_real_settings(values: Path):
    settings = yaml.safe_load(values.read_text()).get("settings") or {}
    assert settings, "settings block"
    unknown = sorted(k for k in settings if snake_case(k) not in setting_field_names())
    assert not unknown, f"not settings of the scaler: {unknown}"


def test_every_rendered_setting_exists(all_objects: list[dict[str, Any]]):
    (container,) = only(all_objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = container_env(container)
    assert not unknown_env(env), unknown_env(env)
    values = yaml.safe_load(ALL_VALUES.read_text())["settings"]
    for key, value in values.items():
        assert env[f"SCALER_{snake_case(key).upper()}"] == str(value), key


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--set", "settings.grpcPort=1"], "set ports.grpc instead"),
        (["--set", "settings.tlsCert=/x"], "set tls instead"),
        (["--set", "tls.enabled=true"], "tls.existingSecret is required"),
        (["--set", "profiles.enabled=true"], "profiles.existingSecret is required"),
        (["--set", "profiles.requireProfiles=true"], "needs profiles.enabled"),
        (["--set", "tls.clientCA.enabled=true"], "needs tls.enabled"),
        (["--set", "replicaCount=two"], "replicaCount"),
        (["--set", "settingz.cacheTtl=1"], "settingz"),
    ],
)
def test_bad_values_are_refused(helm: Path, flags: list[str], error: str):
    result = _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *flags)
    assert result.returncode != 0
    assert error in result.stderr


def test_single_replica_has_no_pdb(helm: Path):
    objects = _template(helm, "--set", "replicaCount=1")
    assert "PodDisruptionBudget" not in {doc["kind"] for doc in objects}


def test_notes_print_the_scaler_address(helm: Path, tmp_path: Path):
    # `helm install --dry-run` needs a cluster: render NOTES.txt through `tpl` in a copy instead
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    shutil.copy(CHART / "templates" / "NOTES.txt", chart / "notes.txt")
    (chart / "templates" / "notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}\n'
    )
    for values in ([], ["--values", str(ALL_VALUES)]):
        result = _helm(
            helm,
            "template",
            RELEASE,
            str(chart),
            "--namespace",
            NAMESPACE,
            "--show-only",
            "templates/notes.yaml",
            *values,
        )
        assert result.returncode == 0, result.stderr
        (config_map,) = load_documents(result.stdout)
        notes = config_map["data"]["notes"]
        assert f"scalerAddress: {SCALER_ADDRESS}" in notes
        assert "headless" in notes
        assert "round-robin per RPC" in notes
        assert "--max-connection-age" in notes
        if values:
            assert 'enableTLS: "true"' in notes
            assert "connection: " in notes
            assert "shared in the state store of Secret keda-queue-scaler-state" in notes
        else:
            # three replicas by default, and no store: the disagreement is spelled out
            assert "WARNING: 3 replicas without stateStore.existingSecret" in notes


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_three_replicas_spread_over_nodes_and_zones_by_default(
    default_objects: list[dict[str, Any]],
):
    deployment = only(default_objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    )
    spread = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in spread.values():
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"  # soft: one zone still works
        assert constraint["labelSelector"]["matchLabels"] == selector
    pdb = only(default_objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    (container,) = pod["containers"]
    env = _env(container)
    # the service is told how many replicas there are (it warns: no state store by default)
    assert env["SCALER_REPLICAS"]["value"] == "3"
    assert "SCALER_STATE_URL" not in env
    settings = load_settings(container.get("args", []), literal_env(container))
    assert settings.replicas == 3
    assert settings.state_url == ""


def test_the_state_store_url_comes_from_a_secret(all_objects: list[dict[str, Any]]):
    deployment = only(all_objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    url = _env(container)["SCALER_STATE_URL"]
    assert "value" not in url  # never a plain value in the manifest
    assert url["valueFrom"]["secretKeyRef"] == {
        "name": "keda-queue-scaler-state",
        "key": "redis-url",
    }
    # a user's own affinity replaces the default anti-affinity
    assert set(deployment["spec"]["template"]["spec"]["affinity"]) == {"nodeAffinity"}


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (
            ["--set", "settings.stateUrl=redis://x"],
            "settings.stateUrl: set stateStore.existingSecret",
        ),
        (["--set", "settings.replicas=2"], "settings.replicas: set replicaCount"),
    ],
)
def test_the_state_url_and_replicas_are_not_plain_settings(
    helm: Path, flags: list[str], error: str
):
    result = _helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *flags)
    assert result.returncode != 0
    assert error in result.stderr
