"""A backend is one module and one registry line: the toy ``spool`` backend (tests/toy_backend.py,
registered in tests/registry.py and named nowhere else) is parsed from its declared parameters,
fuzzed by tests/test_fuzz_metadata.py (which takes its keys from the registry), kept to its own
keys by connection profiles, and served over gRPC with KEDA's call pattern."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from scaler.errors import MetadataError
from scaler.metadata import declared
from scaler.profiles import Profile, Profiles
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.registry import BACKENDS
from tests.test_fuzz_metadata import KEYS
from tests.toy_backend import SpoolBackend, SpoolRoot


def test_it_is_registered_by_one_line_and_fuzzed_from_its_declarations() -> None:
    assert SpoolBackend in BACKENDS
    assert KEYS[SpoolBackend.name] == [p.key for _, p in declared(SpoolBackend.params)]
    assert SpoolBackend.connection_keys() == {"directory"}


def test_its_parameters_come_from_the_declarations() -> None:
    backend = SpoolBackend(timeout=1.0)
    trigger = backend.parse({"backend": "spool", "directory": "/var/spool/", "queue": "in"})
    assert trigger.connection == SpoolRoot("/var/spool")
    assert trigger.resource == "in"
    assert trigger.target == 5.0  # the declared default
    assert trigger.metric_name() == "spool-in"
    with pytest.raises(MetadataError) as err:
        backend.parse({"backend": "spool", "directory": "spool", "queueLength": "0"})
    assert err.value.problems == (
        "spool: missing required parameter queue",
        "spool: queueLength: '0' must be greater than 0",
        "spool: directory: 'spool' is not an absolute path",
    )


def test_a_profile_supplies_its_connection_keys() -> None:
    profile = Profile("local", SpoolBackend.name, {"directory": "/var/spool"})
    keys = {SpoolBackend.name: SpoolBackend.connection_keys()}
    profiles = Profiles({"local": profile}, keys, required=True)
    resolved = profiles.resolve({"connection": "local", "queue": "in"})
    assert resolved == {
        "connection": "local",
        "queue": "in",
        "directory": "/var/spool",
        "backend": "spool",
    }
    with pytest.raises(MetadataError, match="directory: cannot be set beside connection"):
        profiles.resolve({"connection": "local", "queue": "in", "directory": "/elsewhere"})


async def test_it_is_served_over_grpc(serve, tmp_path: Path) -> None:
    queue = tmp_path / "orders"
    queue.mkdir()
    for n in range(7):
        (queue / f"job-{n}").write_text("work")
    meta = {"backend": "spool", "directory": str(tmp_path), "queue": "orders", "queueLength": "3"}
    running = await serve()
    spec = (await running.stub.GetMetricSpec(ref(meta))).metricSpecs[0]
    assert (spec.metricName, spec.targetSizeFloat) == ("spool-orders", 3.0)
    values = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(meta), metricName=spec.metricName)
    )
    assert values.metricValues[0].metricValueFloat == len(list(queue.iterdir())) == 7
    assert (await running.stub.IsActive(ref(meta))).result is True
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref({**meta, "queue": "missing"}))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
