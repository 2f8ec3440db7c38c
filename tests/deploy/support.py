"""Helpers of the deployment tests: YAML loading, Kubernetes and KEDA schema checks, settings.

Kubernetes objects are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict
mode: unknown fields are errors) for the oldest Kubernetes with GA native gRPC probes (1.27) and
the newest one the installed kubernetes-validate ships. KEDA publishes no schema package, so
ScaledObject/ScaledJob are checked against ``KEDA_SCHEMAS`` below: the fields of KEDA's CRDs
(keda.sh/v1alpha1, config/crd/bases) that a manifest may use, unknown fields rejected; a
ScaledJob's ``jobTargetRef`` is a batch/v1 JobSpec and is validated as one.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # kubernetes-validate's own validator
import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from scaler.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
# the address the examples use: the Service of deploy/k8s (and of the chart installed as
# `keda-queue-scaler` in namespace keda)
SCALER_ADDRESS = "keda-queue-scaler.keda.svc.cluster.local:9090"
CUSTOM_GROUPS = ("keda.sh/", "monitoring.coreos.com/")


def load_documents(source: Path | str) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file (Path) or a string."""
    text = source.read_text() if isinstance(source, Path) else source
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def describe(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata", {})
    return f"{doc.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def is_custom_resource(doc: Mapping[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).startswith(CUSTOM_GROUPS)


def validate_kubernetes(doc: Mapping[str, Any]) -> None:
    """Validate a built-in Kubernetes object against the schemas of every K8S_VERSIONS."""
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(dict(doc), version, strict=True)
        except kubernetes_validate.ValidationError as err:
            where = ".".join(str(p) for p in err.path)
            raise AssertionError(
                f"{describe(doc)} is invalid for Kubernetes {version}: {err.message} at {where}"
            ) from None


# --- settings ---------------------------------------------------------------------------------


def setting_env_names() -> set[str]:
    """SCALER_* variables of every setting, read from the dataclass (new settings count at once)."""
    return {env_name(f.name) for f in dataclasses.fields(Settings)}


def unknown_env(names: Iterable[str]) -> list[str]:
    known = setting_env_names()
    return sorted(n for n in names if n.startswith("SCALER_") and n not in known)


def load_settings(args: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Settings as ``keda-queue-scaler serve ARGS`` would load them with ENVIRON.

    Unknown arguments fail the assertion, invalid values raise SettingsError.
    """
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    flags, unknown = parser.parse_known_args(list(args))
    assert not unknown, f"not flags of `serve`: {unknown}"
    return Settings.load(vars(flags), dict(environ or {}))


def snake_case(camel: str) -> str:
    """``cacheTtl`` -> ``cache_ttl`` (as the chart's sprig ``snakecase`` does)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def setting_field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(Settings)}


# --- pods -------------------------------------------------------------------------------------


def only(docs: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Any]:
    found = [dict(d) for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container_env(container: Mapping[str, Any]) -> dict[str, str | None]:
    """name -> literal value (None for valueFrom)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in container_env(container).items() if v is not None}


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_scaler_deployment(
    deployment: Mapping[str, Any], *, tls: bool = False, grpc_port: int = 9090
) -> None:
    """What every deployment of the scaler must have, from the plain manifests or the chart."""
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    pod_security = pod["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] >= 1000
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security.get("privileged", False) is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), f"resources.{bound}"
    # the read-only root filesystem has one writable emptyDir, on /tmp
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == grpc_port
    # probes: native gRPC (grpc.health.v1) on the gRPC port; with TLS on the plaintext
    # health-only port (SCALER_HEALTH_PORT), since kubelet gRPC probes cannot speak TLS
    probe_port = ports["health"] if tls else grpc_port
    for name in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[name]["grpc"]["port"] == probe_port, name
    if tls:
        assert container_env(container)["SCALER_HEALTH_PORT"] == str(probe_port)
    from scaler.app import SERVICE_NAME

    assert container["readinessProbe"]["grpc"]["service"] == SERVICE_NAME
    assert "service" not in container["livenessProbe"]["grpc"]
    # every setting it passes exists and has a valid value
    env = container_env(container)
    assert not unknown_env(env), f"unknown settings {unknown_env(env)}"
    loaded = load_settings(container.get("args", []), literal_env(container))
    assert loaded.grpc_port == grpc_port


def check_headless_service(service: Mapping[str, Any], deployment: Mapping[str, Any]) -> None:
    spec = service["spec"]
    assert spec["clusterIP"] == "None", "KEDA round-robins only across a headless Service's pods"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(spec["selector"], pod_labels)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container_ports = {p["name"] for p in container["ports"]}
    for port in spec["ports"]:
        assert port["targetPort"] in container_ports
    assert {p["name"] for p in spec["ports"]} == {"grpc", "metrics"}


def check_network_policy(
    policy: Mapping[str, Any], deployment: Mapping[str, Any], keda_namespace: str = "keda"
) -> None:
    spec = policy["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(spec["podSelector"]["matchLabels"], pod_labels)
    assert spec["policyTypes"] == ["Ingress"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    sources_by_port: dict[int, list[dict[str, Any]]] = {}
    for rule in spec["ingress"]:
        assert rule.get("from"), "a rule without `from` admits everyone"
        for port in rule["ports"]:
            sources_by_port.setdefault(port["port"], []).extend(rule["from"])
    assert set(sources_by_port) == {ports["grpc"], ports["metrics"]}
    (keda,) = sources_by_port[ports["grpc"]]
    assert keda["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": keda_namespace
    }
    for source in sources_by_port[ports["metrics"]]:
        assert source["namespaceSelector"], "metrics open to every namespace"


def check_pdb(pdb: Mapping[str, Any], deployment: Mapping[str, Any]) -> None:
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def check_service_monitor(monitor: Mapping[str, Any], service: Mapping[str, Any]) -> None:
    """The fields of monitoring.coreos.com/v1 ServiceMonitor that we use (no schema ships)."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert selects(spec["selector"]["matchLabels"], service["metadata"]["labels"])
    assert spec["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    allowed = {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings"}
    assert set(endpoint) <= allowed


# --- KEDA -------------------------------------------------------------------------------------

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_TRIGGER = {
    "type": "object",
    "required": ["type", "metadata"],
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string"},
        "name": {"type": "string"},
        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
        "useCachedMetrics": {"type": "boolean"},
        # KEDA's CRD: map<string,string>; an unquoted 5 would be rejected by the API server
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "authenticationRef": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
        },
    },
}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "envSourceContainerName": {"type": "string"},
                        },
                    },
                    "pollingInterval": _INT32,
                    "cooldownPeriod": _INT32,
                    "initialCooldownPeriod": _INT32,
                    "idleReplicaCount": _INT32,
                    "minReplicaCount": _INT32,
                    "maxReplicaCount": _INT32,
                    "fallback": {"type": "object"},
                    "advanced": {"type": "object"},
                    "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
                },
            },
        },
    },
    "ScaledJob": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledJob"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["jobTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "jobTargetRef": {"type": "object", "required": ["template"]},
                    "pollingInterval": _INT32,
                    "successfulJobsHistoryLimit": _INT32,
                    "failedJobsHistoryLimit": _INT32,
                    "minReplicaCount": _INT32,
                    "maxReplicaCount": _INT32,
                    "envSourceContainerName": {"type": "string"},
                    "rollout": {"type": "object"},
                    "scalingStrategy": {"type": "object"},
                    "triggers": {"type": "array", "minItems": 1, "items": _TRIGGER},
                },
            },
        },
    },
}


def validate_keda(doc: Mapping[str, Any]) -> None:
    """ScaledObject/ScaledJob against KEDA_SCHEMAS; a ScaledJob's jobTargetRef as a JobSpec."""
    kind = doc.get("kind")
    assert kind in KEDA_SCHEMAS, f"{describe(doc)}: not a ScaledObject or ScaledJob"
    try:
        jsonschema.Draft202012Validator(KEDA_SCHEMAS[kind]).validate(doc)
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.path)
        raise AssertionError(f"{describe(doc)}: {err.message} at {where}") from None
    if kind == "ScaledJob":
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": doc["metadata"]["name"]},
            "spec": doc["spec"]["jobTargetRef"],
        }
        validate_kubernetes(job)
    spec = doc["spec"]
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    assert 0 <= low <= high, f"{describe(doc)}: replicas {low}..{high}"
