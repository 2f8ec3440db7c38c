"""A toy backend, defined in one module: the depth of a spool directory (maildir-style queues).

``backend: spool`` counts the entries of ``<directory>/<queue>``. It exists to prove that a
backend is one module plus one registry line (tests/registry.py): its parameters are declared
once, and the engine, the server, the fuzz test and profiles need nothing else.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from scaler.backends.base import Backend, Client, Evaluation, Measurement, Trigger, metric_name
from scaler.errors import TargetNotFound
from scaler.metadata import Reading, param
from scaler.values import InvalidValue, integer, non_negative, positive, quote


def _queue_name(text: str) -> str:
    if "/" in text or text in (".", ".."):
        raise InvalidValue("is not a single directory name")
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolParams:
    directory: str = param("directory", connection=True, doc="absolute path of the spool root")
    queue: str = param("queue", _queue_name, doc="the queue: a directory below the spool root")
    queue_length: int = param(
        "queueLength", integer, default=5, check=positive, doc="target entries per replica"
    )
    activation_queue_length: int = param(
        "activationQueueLength", integer, default=0, check=non_negative, doc="active iff more"
    )


@dataclass(frozen=True, slots=True)
class SpoolRoot:
    path: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolTrigger(Trigger[SpoolRoot, str]):
    params: SpoolParams

    @property
    def target(self) -> float:
        return float(self.params.queue_length)

    def metric_name(self) -> str:
        return metric_name("spool", self.resource)

    def resource_label(self) -> str:
        return f"{self.connection.path}/{self.resource}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        active = measurement.value > self.params.activation_queue_length
        return Evaluation(measurement.value, active)


class SpoolClient(Client[str]):
    def __init__(self, root: SpoolRoot) -> None:
        self._root = root

    async def measure(self, resource: str) -> Measurement:
        return Measurement(float(await asyncio.to_thread(self._count, resource)))

    def _count(self, queue: str) -> int:
        try:
            with os.scandir(os.path.join(self._root.path, queue)) as entries:
                return sum(1 for _ in entries)
        except (FileNotFoundError, NotADirectoryError):
            raise TargetNotFound(f"spool {self._root.path}: no queue {queue!r}") from None

    async def aclose(self) -> None:
        """Nothing is held open between reads."""


class SpoolBackend(Backend[SpoolParams, SpoolRoot, str]):
    name = "spool"
    params = SpoolParams

    def build(self, params: SpoolParams, reading: Reading) -> SpoolTrigger | None:
        if params.directory is not None and not os.path.isabs(params.directory):
            reading.problem(f"directory: {quote(params.directory)} is not an absolute path")
        if reading.failed:
            return None
        return SpoolTrigger(
            connection=SpoolRoot(os.path.normpath(params.directory)),
            resource=params.queue,
            params=params,
        )

    def connect(self, connection: SpoolRoot) -> SpoolClient:
        return SpoolClient(connection)
