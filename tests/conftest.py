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
from scaler.backends.base import Backend
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings
from tests.fakes import FakeBackend


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
        return self.registry.get_sample_value(name, dict(labels or {})) or 0.0


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
        backends: dict[str, Backend] = dict(build_backends(settings.backend_timeout))
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
