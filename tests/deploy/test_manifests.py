"""deploy/k8s (plain manifests) and deploy/examples (KEDA ScaledObjects/ScaledJobs).

Every object is validated against the Kubernetes schemas (kubernetes-validate, strict); KEDA's
objects against the fields of KEDA's CRDs (support.KEDA_SCHEMAS), and every trigger's metadata
is parsed by the scaler's own engine, with ``xxxFromEnv`` keys resolved as KEDA resolves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import scaler
from scaler.app import build_engine
from scaler.backends import build_backends
from scaler.settings import Settings
from tests.deploy.support import (
    ROOT,
    SCALER_ADDRESS,
    check_headless_service,
    check_network_policy,
    check_pdb,
    check_scaler_deployment,
    check_service_monitor,
    describe,
    is_custom_resource,
    load_documents,
    only,
    validate_keda,
    validate_kubernetes,
)

K8S = ROOT / "deploy" / "k8s"
EXAMPLES = ROOT / "deploy" / "examples"
DEMO_SCALED_OBJECT = ROOT / "deploy" / "compose" / "demo" / "scaledobject.yaml"
MANIFEST_FILES = sorted(K8S.rglob("*.yaml"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def _all_k8s_docs() -> list[dict[str, Any]]:
    return [doc for path in MANIFEST_FILES for doc in load_documents(path)]


def _scaled(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("ScaledObject", "ScaledJob")]


def test_the_manifest_folders_hold_what_the_docs_promise():
    assert {p.relative_to(K8S).as_posix() for p in MANIFEST_FILES} == {
        "deployment.yaml",
        "service.yaml",
        "serviceaccount.yaml",
        "poddisruptionbudget.yaml",
        "networkpolicy.yaml",
        "optional/servicemonitor.yaml",
    }
    assert len(EXAMPLE_FILES) >= 4


@pytest.mark.parametrize("path", MANIFEST_FILES + EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_object_is_valid_for_kubernetes(path: Path):
    docs = load_documents(path)
    assert docs
    for doc in docs:
        if doc["kind"] in ("ScaledObject", "ScaledJob"):
            validate_keda(doc)
        elif doc["kind"] == "ServiceMonitor":
            pass  # checked field by field in test_service_monitor_scrapes_the_metrics_port
        else:
            assert not is_custom_resource(doc), describe(doc)
            validate_kubernetes(doc)


def test_plain_manifests_live_in_the_keda_namespace():
    for doc in _all_k8s_docs():
        assert doc["metadata"]["namespace"] == "keda", describe(doc)


def test_deployment_is_hardened_with_grpc_probes():
    docs = _all_k8s_docs()
    deployment = only(docs, "Deployment")
    check_scaler_deployment(deployment)
    assert deployment["spec"]["replicas"] >= 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"keda-queue-scaler:{scaler.__version__}"
    account = only(docs, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )


def test_service_is_headless_and_is_the_examples_scaler_address():
    docs = _all_k8s_docs()
    service, deployment = only(docs, "Service"), only(docs, "Deployment")
    check_headless_service(service, deployment)
    grpc_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    meta = service["metadata"]
    assert f"{meta['name']}.{meta['namespace']}.svc.cluster.local:{grpc_port}" == SCALER_ADDRESS
    assert "round_robin" in (K8S / "service.yaml").read_text(), "say why it is headless"


def test_pdb_and_network_policy_select_the_scaler():
    docs = _all_k8s_docs()
    deployment = only(docs, "Deployment")
    check_pdb(only(docs, "PodDisruptionBudget"), deployment)
    check_network_policy(only(docs, "NetworkPolicy"), deployment)


def test_service_monitor_scrapes_the_metrics_port():
    docs = _all_k8s_docs()
    check_service_monitor(only(docs, "ServiceMonitor"), only(docs, "Service"))


# --- KEDA examples ----------------------------------------------------------------------------

# Stand-ins for the values KEDA resolves `xxxFromEnv` to (secrets are not in the manifests).
_RESOLVED = {"passwordFromEnv": "s3cret", "usernameFromEnv": "scaler"}


def _target_containers(scaled: Mapping[str, Any], docs: list[dict[str, Any]]) -> list[Any]:
    """The containers KEDA resolves `xxxFromEnv` from: the scale target's, or the Job's."""
    if scaled["kind"] == "ScaledJob":
        containers: list[Any] = scaled["spec"]["jobTargetRef"]["template"]["spec"]["containers"]
        return containers
    name = scaled["spec"]["scaleTargetRef"]["name"]
    namespace = scaled["metadata"].get("namespace")
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name:
            assert doc["metadata"].get("namespace") == namespace, describe(doc)
            result: list[Any] = doc["spec"]["template"]["spec"]["containers"]
            return result
    raise AssertionError(f"{describe(scaled)}: no Deployment {name} in the same file")


def _resolve_from_env(metadata: Mapping[str, str], containers: list[Any]) -> dict[str, str]:
    """Metadata as KEDA forwards it: `xxxFromEnv` holds the resolved value of the env var."""
    env_names = {e["name"] for c in containers for e in c.get("env", [])}
    resolved = dict(metadata)
    for key, value in metadata.items():
        if key.endswith("FromEnv"):
            assert value in env_names, f"{key}: {value} is not an env var of the target"
            resolved[key] = _RESOLVED.get(key, f"value-of-{value}")
    return resolved


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
async def test_example_triggers_point_at_the_scaler_and_parse(path: Path):
    docs = load_documents(path)
    scaled = _scaled(docs)
    assert scaled, f"{path.name} has no ScaledObject or ScaledJob"
    engine = build_engine(Settings())
    try:
        for doc in scaled:
            containers = _target_containers(doc, docs)
            for trigger in doc["spec"]["triggers"]:
                expected = (
                    ("external",) if doc["kind"] == "ScaledJob" else ("external", "external-push")
                )
                assert trigger["type"] in expected, describe(doc)
                metadata = trigger["metadata"]
                assert metadata["scalerAddress"] == SCALER_ADDRESS
                assert metadata["backend"] in build_backends(1.0)
                engine.parse(_resolve_from_env(metadata, containers))
    finally:
        await engine.aclose()


def _trigger_by_backend(
    backend: str, kind: str = "ScaledObject"
) -> tuple[dict[str, Any], dict[str, str]]:
    for path in EXAMPLE_FILES:
        for doc in _scaled(load_documents(path)):
            for trigger in doc["spec"]["triggers"]:
                if doc["kind"] == kind and trigger["metadata"]["backend"] == backend:
                    return doc, trigger["metadata"]
    raise AssertionError(f"no {kind} example with backend {backend}")


def test_examples_cover_each_backend_as_the_issue_asks():
    redis_so, redis_meta = _trigger_by_backend("redis")
    assert (redis_so["spec"]["minReplicaCount"], redis_so["spec"]["maxReplicaCount"]) == (0, 20)
    assert redis_meta["listLength"] == "5"
    kafka_so, kafka_meta = _trigger_by_backend("kafka")
    assert (kafka_so["spec"]["minReplicaCount"], kafka_so["spec"]["maxReplicaCount"]) == (0, 100)
    assert kafka_meta["lagThreshold"] == "10"
    _trigger_by_backend("kafka", kind="ScaledJob")
    _trigger_by_backend("rabbitmq")


async def test_demo_scaled_object_is_the_redis_work_queue():
    (doc,) = load_documents(DEMO_SCALED_OBJECT)
    validate_keda(doc)
    assert (doc["spec"]["minReplicaCount"], doc["spec"]["maxReplicaCount"]) == (0, 20)
    (trigger,) = doc["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert metadata["backend"] == "redis"
    assert metadata["listLength"] == "5"
    engine = build_engine(Settings())
    try:
        engine.parse(metadata)
    finally:
        await engine.aclose()


def test_unquoted_metadata_values_are_rejected():
    """The KEDA schema check itself: metadata is map<string,string> in KEDA's CRD."""
    (doc,) = load_documents(DEMO_SCALED_OBJECT)
    doc["spec"]["triggers"][0]["metadata"]["listLength"] = 5
    with pytest.raises(AssertionError, match="is not of type 'string'"):
        validate_keda(doc)
    (doc,) = load_documents(DEMO_SCALED_OBJECT)
    doc["spec"]["scaleTargetRef"]["nam"] = "typo"
    with pytest.raises(AssertionError, match="nam"):
        validate_keda(doc)
