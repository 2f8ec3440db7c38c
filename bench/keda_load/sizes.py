"""Every knob of the KEDA load benchmark's workload, and the smaller set of ``--quick``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sizes:
    """Every knob of the workload; ``--quick`` shrinks them to a smoke run."""

    poll_objects: int = 1000
    poll_queues: int = 10
    poll_concurrency: int = 50
    poll_streams: int = 100
    poll_interval: float = 4.0
    sustained_seconds: float = 10.0
    baseline_seconds: float = 3.0
    tp_objects: int = 10_000
    tp_queues: int = 100
    tp_concurrency: int = 16
    tp_seconds: float = 15.0
    tp_streams: int = 0
    known_objects: int = 10_000
    streams: int = 1000
    stream_queues: int = 100
    stream_window: float = 10.0
    stream_settle: float = 2.0
    activations: int = 200
    lanes: int = 4
    amqp_lanes: int = 2
    http_lanes: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            poll_objects=200,
            poll_streams=20,
            poll_interval=2.0,
            sustained_seconds=2.0,
            baseline_seconds=1.0,
            tp_objects=1000,
            tp_queues=10,
            tp_seconds=2.0,
            known_objects=1000,
            streams=100,
            stream_queues=10,
            stream_window=2.0,
            stream_settle=1.0,
            activations=10,
            lanes=2,
            amqp_lanes=1,
            http_lanes=5,
        )
