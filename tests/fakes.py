"""A backend driven by the test: values and errors scripted per resource (httpx MockTransport).

``backend: fake`` metadata: ``name`` (resource), ``target`` (default 5), ``activation`` (0),
``address`` (connection identity, default ``fake:1``), ``password`` (secret, optional).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from scaler.backends.base import Backend, Batch, Client, Evaluation, Measurement, Trigger
from scaler.backends.base import metric_name as kedas_metric_name
from scaler.errors import BackendError
from scaler.metadata import Reading, param
from scaler.values import number


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeParams:
    name: str = param("name")
    target: float = param("target", number, default=5.0)
    activation: float = param("activation", number, default=0.0)
    address: str = param("address", default="fake:1", connection=True)
    password: str | None = param("password", default=None, secret=True, connection=True)


@dataclass(frozen=True, slots=True)
class FakeConnection:
    address: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeTrigger(Trigger[FakeConnection, str]):
    params: FakeParams

    @property
    def target(self) -> float:
        return self.params.target

    def metric_name(self) -> str:
        return kedas_metric_name("fake", self.resource)

    def resource_label(self) -> str:
        return f"{self.connection.address}/{self.resource}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        return Evaluation(measurement.value, measurement.value > self.params.activation)


class FakeBackend(Backend[FakeParams, FakeConnection, str]):
    """Values per resource in ``values``; an exception there is raised by ``measure``."""

    name = "fake"
    params = FakeParams

    def __init__(self, timeout: float = 1.0) -> None:
        super().__init__(timeout)
        self.values: dict[str, float | BaseException] = {}
        self.reads: dict[str, int] = {}
        self.delay = 0.0
        #: a client library that loses a cancellation arriving during the delay (some do)
        self.swallow_cancel = False
        self.clients: list[FakeClient] = []

    def build(self, params: FakeParams, reading: Reading) -> FakeTrigger | None:
        if reading.failed:
            return None
        return FakeTrigger(
            connection=FakeConnection(params.address, params.password),
            resource=params.name,
            params=params,
        )

    def connect(self, connection: FakeConnection) -> FakeClient:
        client = CancelLosingClient(self) if self.swallow_cancel else FakeClient(self)
        self.clients.append(client)
        return client


class FakeClient(Client[str]):
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.closed = False

    async def measure(self, resource: str) -> Measurement:
        self.backend.reads[resource] = self.backend.reads.get(resource, 0) + 1
        if self.backend.delay:
            try:
                await asyncio.sleep(self.backend.delay)
            except asyncio.CancelledError:
                if not self.backend.swallow_cancel:
                    raise
        value = self.backend.values.get(resource, 0.0)
        if isinstance(value, BaseException):
            raise value
        return Measurement(value)

    async def aclose(self) -> None:
        self.closed = True


class CancelLosingClient(FakeClient):
    """A batch client whose reads lose a cancellation that arrives during the delay."""

    async def measure_many(self, resources: Sequence[str]) -> Batch[str]:
        return {r: await self.measure(r) for r in resources}, len(resources)


__all__ = ["BackendError", "FakeBackend", "FakeTrigger"]
