"""A backend driven by the test: values and errors scripted per resource (httpx MockTransport).

``backend: fake`` metadata: ``name`` (resource), ``target`` (default 5), ``activation`` (0),
``address`` (connection identity, default ``fake:1``), ``password`` (secret, optional).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from scaler.backends.base import BackendClient, Evaluation, Measurement, metric_name
from scaler.errors import BackendError
from scaler.metadata import MetadataReader, number, text


@dataclass(frozen=True, slots=True)
class FakeConnection:
    address: str
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class FakeTrigger:
    connection: FakeConnection
    resource: str
    target: float = 5.0
    activation: float = 0.0
    backend: str = "fake"

    def metric_name(self) -> str:
        return metric_name("fake", self.resource)

    def resource_label(self) -> str:
        return f"{self.connection.address}/{self.resource}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        return Evaluation(measurement.value, measurement.value > self.activation)


class FakeBackend:
    """Values per resource in ``values``; an exception there is raised by ``measure``."""

    name = "fake"
    connection_keys = frozenset({"address", "password"})

    def __init__(self) -> None:
        self.values: dict[str, float | BaseException] = {}
        self.reads: dict[str, int] = {}
        self.delay = 0.0
        #: a client library that loses a cancellation arriving during the delay (some do)
        self.swallow_cancel = False
        self.clients: list[FakeClient] = []

    def parse(self, raw: Mapping[str, str]) -> FakeTrigger:
        r = MetadataReader(raw, "fake")
        name = r.get("name", text)
        target = r.get("target", number, default=5.0)
        activation = r.get("activation", number, default=0.0)
        address = r.get("address", text, default="fake:1")
        password = r.get("password", text, default=None, secret=True)
        r.finish()
        assert name is not None
        return FakeTrigger(FakeConnection(address, password), name, target, activation)

    def connect(self, connection: Hashable) -> BackendClient:
        client = CancelLosingClient(self) if self.swallow_cancel else FakeClient(self)
        self.clients.append(client)
        return client


class FakeClient:
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.closed = False

    async def measure(self, resource: Hashable) -> Measurement:
        assert isinstance(resource, str)
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

    async def measure_many(
        self, resources: Sequence[Hashable]
    ) -> tuple[dict[Hashable, Measurement | BaseException], int]:
        return {r: await self.measure(r) for r in resources}, len(resources)


__all__ = ["BackendError", "FakeBackend", "FakeTrigger"]
