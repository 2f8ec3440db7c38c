"""``simulate``'s manifest spec: what it reads of a ScaledObject, and what it refuses."""

from __future__ import annotations

import pytest

from scaler.errors import ManifestError
from scaler.tools.manifest import load_manifest
from scaler.tools.simulate.hpa import DEFAULT_SCALE_DOWN, Behavior, ScalingPolicy, ScalingRules
from scaler.tools.simulate.spec import Fallback, ObjectSpec, SimTrigger, load_object
from tests.scaled_objects import manifest, scaled_object


def load(text: str, name: str | None = None) -> ObjectSpec:
    """What ``simulate`` loads: the manifest read once, then the ScaledObject's spec."""
    return load_object(load_manifest(text), name)


def test_load_object_reads_timing_fallback_behavior_and_trigger_fields() -> None:
    trigger = {
        "type": "external-push",
        "metricType": "Value",
        "useCachedMetrics": True,
        "metadata": {"backend": "fake", "name": "jobs"},
    }
    behavior = {
        "scaleUp": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}]},
        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min", "tolerance": "50m"},
    }
    loaded = load(
        manifest(
            scaled_object(
                "consumer",
                trigger,
                pollingInterval=10,
                cooldownPeriod=45,
                initialCooldownPeriod=5,
                minReplicaCount=1,
                fallback={"failureThreshold": 3, "replicas": 4},
                advanced={"horizontalPodAutoscalerConfig": {"behavior": behavior}},
            )
        )
    )
    assert (loaded.polling_interval, loaded.cooldown_period, loaded.initial_cooldown_period) == (
        10,
        45,
        5,
    )
    assert loaded.fallback == Fallback(3, 4, "static")
    assert loaded.triggers == (
        SimTrigger(0, "external-push", {"backend": "fake", "name": "jobs"}, "Value", True),
    )
    assert loaded.behavior == Behavior(
        # fields not given keep Kubernetes' defaults
        ScalingRules(0, "Max", (ScalingPolicy("Pods", 2, 30),)),
        ScalingRules(60, "Min", DEFAULT_SCALE_DOWN.policies, 0.05),
    )
    # KEDA's defaults, and no behavior at all when the manifest gives none
    plain = load(manifest(scaled_object()))
    assert (plain.polling_interval, plain.cooldown_period, plain.behavior) == (30, 300, None)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            scaled_object("c", {"type": "cpu", "metadata": {"value": "50"}}),
            "has type 'cpu': only external and external-push triggers",
        ),
        (
            scaled_object(advanced={"scalingModifiers": {"formula": "a"}}),
            "scalingModifiers is not modelled",
        ),
        (scaled_object(pollingInterval=0), "pollingInterval must be an integer of at least 1"),
        (scaled_object(fallback={"replicas": 2}), "spec.fallback.failureThreshold is required"),
        (
            scaled_object(
                advanced={
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0}]}}
                    }
                }
            ),
            "policies[0]: value must be an integer of at least 1",
        ),
        (
            scaled_object("c", {"type": "external", "metricType": "Utilization", "metadata": {}}),
            "metricType must be AverageValue or Value",
        ),
    ],
)
def test_load_object_refuses_what_it_cannot_model(document, problem) -> None:
    with pytest.raises(ManifestError) as err:
        load(manifest(document))
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_load_object_picks_one_scaled_object() -> None:
    text = manifest(scaled_object("a"), scaled_object("b"))
    with pytest.raises(
        ManifestError, match=r"several ScaledObjects \(a, b\): choose one with --name"
    ):
        load(text)
    assert load(text, "b").ref.name == "b"
    with pytest.raises(ManifestError, match=r"no ScaledObject named 'c' \(found: a, b\)"):
        load(text, "c")
    job = scaled_object("j")
    job["kind"] = "ScaledJob"
    job["spec"]["jobTargetRef"] = {"template": {}}
    # the command chooses among both kinds first (test_simulate_jobs); this loader only reads
    # ScaledObjects
    with pytest.raises(ManifestError, match="no ScaledObject to simulate"):
        load(manifest(job))
