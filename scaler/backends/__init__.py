"""The backend registry, written out by hand (KEDA's explicit switch, no import-time plugins).

Adding a backend is one package (or module) and one line here; nothing else in the tree names
a backend: watch intervals, quiet loggers, connection keys and capabilities live on the class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from scaler.backends.base import AnyBackend
from scaler.backends.kafka import KafkaBackend
from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.backends.redis import (
    RedisBackend,
    RedisClusterBackend,
    RedisClusterStreamsBackend,
    RedisSentinelBackend,
    RedisSentinelStreamsBackend,
    RedisStreamsBackend,
)

#: every built-in backend, in the order the docs list them
BACKENDS: Final[tuple[type[AnyBackend], ...]] = (
    RedisBackend,
    RedisClusterBackend,
    RedisSentinelBackend,
    RedisStreamsBackend,
    RedisClusterStreamsBackend,
    RedisSentinelStreamsBackend,
    KafkaBackend,
    RabbitMQBackend,
)


def build_backends(
    timeout: float, classes: Sequence[type[AnyBackend]] = BACKENDS
) -> dict[str, AnyBackend]:
    """One instance of each backend class, by the name that selects it in ``backend: <name>``.

    Building has no side effects (no threads, no connections) until a backend is first used.

    :param timeout: socket-level timeout for broker clients (the engine also bounds each call)
    """
    return {cls.name: cls(timeout) for cls in classes}


def quiet_loggers(classes: Iterable[type[AnyBackend]] = BACKENDS) -> tuple[str, ...]:
    """The client-library loggers every backend wants kept quiet."""
    return tuple(dict.fromkeys(name for cls in classes for name in cls.quiet_loggers))
