"""The backend registry, written out by hand (KEDA's explicit switch, no import-time plugins)."""

from __future__ import annotations

from scaler.backends.base import Backend
from scaler.backends.kafka import KafkaBackend
from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.backends.redis import RedisBackend


def build_backends(timeout: float) -> dict[str, Backend]:
    """Every backend by the name that selects it in ``backend: <name>``.

    :param timeout: socket-level timeout for broker clients (the engine also bounds each call)
    """
    backends: list[Backend] = [
        RedisBackend(timeout),
        KafkaBackend(timeout),
        RabbitMQBackend(timeout),
    ]
    return {b.name: b for b in backends}
