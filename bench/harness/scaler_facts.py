"""What the benchmark knows of the scaler beyond its public surface: the one place it imports
scaler internals (``bench/kafka_lag.py`` aside, which instruments the engine itself).

When the core changes a name used here, this module changes and nothing else in bench/ does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from scaler.app import ScalerApp
from scaler.app import watch_interval as watch_interval_of
from scaler.backends import build_backends
from scaler.backends.base import metric_name
from scaler.server import ExternalScalerServicer
from scaler.settings import Settings

#: the settings ``keda-queue-scaler serve`` runs with when given none
DEFAULTS = Settings()
#: the client name the scaler gives its Redis connections (``CLIENT LIST`` shows it)
REDIS_CLIENT_NAME = "keda-queue-scaler"
#: requests of one batched Kafka read (scaler.backends.kafka: Metadata, OffsetFetch, Metadata
#: and ListOffsets for one leader)
KAFKA_REQUESTS_PER_READ = 4


def redis_list_metric(list_name: str) -> str:
    """The metric name GetMetricSpec returns for a ``redis`` trigger on ``list_name``."""
    return metric_name("redis", list_name)


def watch_interval(backend: str) -> float:
    """Seconds between a watcher's reads of ``backend`` (``redis``, ``rabbitmq``, ``kafka``)
    with the default settings."""
    return watch_interval_of(DEFAULTS, build_backends(DEFAULTS.backend_timeout)[backend])


def default_timing() -> dict[str, Any]:
    """The default settings that shape the load on a broker, for a report's setup section."""
    return {
        "cache_ttl_s": DEFAULTS.cache_ttl,
        "watch_intervals_s": {
            name: watch_interval_of(DEFAULTS, backend)
            for name, backend in build_backends(DEFAULTS.backend_timeout).items()
        },
        "watch_max_requests": DEFAULTS.watch_max_requests,
    }


@contextlib.asynccontextmanager
async def in_process_servicer() -> AsyncIterator[ExternalScalerServicer]:
    """The servicer ``serve`` runs, built by the app from default settings, without a port."""
    app = ScalerApp(Settings(bind_address="127.0.0.1", grpc_port=0, metrics_port=0))
    try:
        yield app.servicer()
    finally:
        await app.engine.aclose()
