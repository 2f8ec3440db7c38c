"""Per-resource gauges: the last value always, the oldest age and the work in flight when a
backend reports them, all dropped together when the resource falls out of the bounded set."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.metrics import ScalerMetrics
from tests.conftest import sample


def test_age_and_in_flight_facts_become_gauges_and_leave_with_their_resource() -> None:
    registry = CollectorRegistry()
    metrics = ScalerMetrics(registry, max_resources=2)
    metrics.measured("rabbitmq", "a", Measurement(3.0, {OLDEST_AGE: 42.5, IN_FLIGHT: 7.0}))
    metrics.measured("redis", "b", Measurement(5.0))
    labels = {"backend": "rabbitmq", "resource": "a"}
    assert sample(registry, "keda_queue_scaler_last_value", labels) == 3.0
    assert sample(registry, "keda_queue_scaler_oldest_age_seconds", labels) == 42.5
    assert sample(registry, "keda_queue_scaler_in_flight", labels) == 7.0
    # a length-only backend has no age series at all
    assert (
        registry.get_sample_value(
            "keda_queue_scaler_oldest_age_seconds", {"backend": "redis", "resource": "b"}
        )
        is None
    )
    metrics.measured("redis", "c", Measurement(1.0))  # a third resource evicts the first
    for name in ("last_value", "oldest_age_seconds", "in_flight"):
        assert registry.get_sample_value(f"keda_queue_scaler_{name}", labels) is None
