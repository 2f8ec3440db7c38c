"""The ScaledObjects of the benchmark: what KEDA sends for each, as protobuf and as ghz data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.harness.scaler_facts import redis_list_metric
from scaler.proto import externalscaler_pb2 as pb

NAMESPACE = "bench"


@dataclass(frozen=True)
class ScaledObject:
    """What KEDA sends for one trigger of one ScaledObject."""

    name: str
    metadata: dict[str, str]
    metric: str

    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": NAMESPACE, "scalerMetadata": self.metadata}

    def ref_pb(self) -> pb.ScaledObjectRef:
        return pb.ScaledObjectRef(name=self.name, namespace=NAMESPACE, scalerMetadata=self.metadata)

    def metrics_request(self, hpa: bool) -> dict[str, Any]:
        # KEDA's poll loop sends the name GetMetricSpec returned; the HPA path lower-cases it
        return {
            "scaledObjectRef": self.ref(),
            "metricName": self.metric.lower() if hpa else self.metric,
        }


def redis_objects(count: int, queues: Sequence[str], address: str, tag: str) -> list[ScaledObject]:
    """``count`` ScaledObjects round-robin over ``queues``, each with distinct metadata.

    Object ``i`` watches ``queues[i % M]`` with ``listLength = 1 + i // M``, so every object is
    a distinct metadata map (the scaler memoises one parse per map), as different thresholds
    on shared queues are in a real cluster.
    """
    objects = []
    for i in range(count):
        queue = queues[i % len(queues)]
        objects.append(
            ScaledObject(
                name=f"{tag}-so-{i}",
                metadata={
                    "scalerAddress": "keda-queue-scaler.keda.svc.cluster.local:9090",
                    "backend": "redis",
                    "address": address,
                    "listName": queue,
                    "listLength": str(1 + i // len(queues)),
                    "activationListLength": "0",
                },
                metric=redis_list_metric(queue),
            )
        )
    return objects
