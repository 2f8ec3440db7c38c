"""Shared fixtures: an isolated environment, a fake backend, and a real server on port 0."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from scaler.app import ScalerApp
from scaler.backends import build_backends
from scaler.backends.base import AnyBackend
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings
from tests.fakes import FakeBackend
from tests.registry import BACKENDS


@pytest.fixture(autouse=True)
def _clean_environ() -> Iterator[None]:
    """No SCALER_* setting leaks from the developer's shell into a test, or between tests."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("SCALER_") and not key.startswith(("SCALER_TEST_", "SCALER_REQUIRE")):
            del os.environ[key]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


TEST_SETTINGS = Settings(
    grpc_port=0,
    metrics_port=0,
    bind_address="127.0.0.1",
    cache_ttl=1.0,
    backend_timeout=1.0,
    grace_period=2.0,
    watch_interval=0.02,
)


@dataclass
class Running:
    """A started ScalerApp and an async stub connected to it."""

    app: ScalerApp
    stub: pb_grpc.ExternalScalerAsyncStub
    channel: grpc.aio.Channel
    registry: CollectorRegistry

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.app.grpc_port}"

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The value of one series; see :func:`sample`."""
        return sample(self.registry, name, labels)


_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def sample(
    registry: CollectorRegistry, name: str, labels: Mapping[str, str] | None = None
) -> float:
    """The value of one series: 0 only for a child of a registered family that was never
    touched (a counter nobody incremented); a family that is not registered, or a label it does
    not have, fails the test, so a renamed metric cannot pass an ``== 0`` assertion."""
    wanted = dict(labels or {})
    value = registry.get_sample_value(name, wanted)
    if value is not None:
        return value
    families = {family.name: family for family in registry.collect()}
    base = next((name.removesuffix(s) for s in _SUFFIXES if name.endswith(s)), name)
    family = families.get(name) or families.get(base)
    if family is None:
        raise AssertionError(f"no metric family {name!r} in the registry")
    seen = {key for s in family.samples for key in s.labels}
    unknown = set(wanted) - seen - {"le"}
    if family.samples and unknown:
        raise AssertionError(f"{name} has no label {sorted(unknown)} (its labels: {sorted(seen)})")
    return 0.0


def ref(
    metadata: Mapping[str, str], name: str = "so", namespace: str = "default"
) -> pb.ScaledObjectRef:
    return pb.ScaledObjectRef(name=name, namespace=namespace, scalerMetadata=dict(metadata))


@pytest.fixture
async def serve(fake_backend: FakeBackend) -> AsyncIterator[Callable[..., Any]]:
    """``await serve(**setting_overrides)`` starts a server (fake + real backends) and a stub."""
    started: list[Running] = []

    async def start(**overrides: Any) -> Running:
        settings = replace(TEST_SETTINGS, **overrides)
        backends: dict[str, AnyBackend] = build_backends(settings.backend_timeout, BACKENDS)
        backends["fake"] = fake_backend
        registry = CollectorRegistry()
        app = ScalerApp(settings, registry, backends)
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        running = Running(app, pb_grpc.ExternalScalerStub(channel), channel, registry)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.channel.close()
        await running.app.stop()
