"""The ``rabbitmq`` backend: queue depth and message rates of RabbitMQ queues, with KEDA parity.

``params`` declares the parameters, ``uri`` reads the ``host`` URI and its vhost, ``trigger``
applies the cross-field rules and KEDA's per-mode arithmetic; ``amqp`` (passive declares) and
``management`` (the management API) read the broker. This module is the registry entry.
"""

from __future__ import annotations

from scaler.backends.base import Backend, Client
from scaler.backends.rabbitmq.amqp import AmqpClient
from scaler.backends.rabbitmq.management import HttpClient
from scaler.backends.rabbitmq.params import NAME, RabbitParams
from scaler.backends.rabbitmq.trigger import RabbitConnection, RabbitQueue, RabbitTrigger, build
from scaler.metadata import Reading


class RabbitMQBackend(Backend[RabbitParams, RabbitConnection, RabbitQueue]):
    """The ``rabbitmq`` entry of the backend registry."""

    name = NAME
    params = RabbitParams
    # a passive declare, or one management call per vhost for a whole batch: cheap enough to
    # watch closely (the management API's own counts still change once per statistics interval)
    watch_interval = 0.05
    # aio-pika and aiormq log every failed connect; the scaler reports each failure itself
    quiet_loggers = ("aiormq", "aio_pika")

    def build(self, params: RabbitParams, reading: Reading) -> RabbitTrigger | None:
        return build(params, reading)

    def connect(self, connection: RabbitConnection) -> Client[RabbitQueue]:
        if connection.protocol == "amqp":
            return AmqpClient(connection, self.timeout)
        return HttpClient(connection, self.timeout)


__all__ = ["RabbitConnection", "RabbitMQBackend", "RabbitParams", "RabbitQueue", "RabbitTrigger"]
