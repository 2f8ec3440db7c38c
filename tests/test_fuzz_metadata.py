"""Property-based fuzzing of scalerMetadata: a hostile or broken map costs one clear error.

Parsing (every backend, 10,000+ examples in CI; ``SCALER_FUZZ_EXAMPLES=N`` runs N per case
for a longer run): the engine returns a trigger or raises
MetadataError, never anything else; a parsed trigger has a usable name and a positive target,
evaluates a measurement without crashing, and never shows a password in its repr. Over gRPC
(fewer examples; brokers are loopback ports where nothing listens): only the documented status
codes come back, never INTERNAL or UNKNOWN, and the server keeps serving.
"""

from __future__ import annotations

import math
import os
import random

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaler.app import build_engine
from scaler.backends import build_backends
from scaler.backends.base import Measurement
from scaler.errors import MetadataError
from scaler.metadata import declared
from scaler.proto import externalscaler_pb2 as pb
from scaler.settings import Settings
from scaler.values import resource_name
from tests.conftest import ref
from tests.registry import BACKENDS

SECRET = "fuzz-secret-Zq9"
#: examples per backend case of the parsing property (every registered backend, and none)
EXAMPLES = int(os.environ.get("SCALER_FUZZ_EXAMPLES", "2600"))
# loopback ports where nothing listens: a parsed trigger can only fail to connect
CLOSED = ["127.0.0.1:1", "127.0.0.1:9", "[::1]:1", "localhost:1"]
#: what replaces a declared endpoint over gRPC, by its kind: never a generated host
CLOSED_BY_KIND = {
    "host:port": CLOSED,
    "host": ["127.0.0.1", "localhost"],
    "port": ["1", "9"],
    "uri": ["amqp://127.0.0.1:1/%2F", "http://127.0.0.1:1/vh", "https://127.0.0.1:1/token"],
}

#: every declared key (aliases included) of every registered backend
KEYS = {cls.name: [n for _, p in declared(cls.params) for n in p.names] for cls in BACKENDS}
#: the kind of endpoint each key names, where it names one
ENDPOINTS = {
    cls.name: {n: p.endpoint for _, p in declared(cls.params) if p.endpoint for n in p.names}
    for cls in BACKENDS
}
#: every value a declaration names: its choices and its default
DECLARED_VALUES = sorted(
    {
        str(value).lower() if isinstance(value, bool) else str(value)
        for cls in BACKENDS
        for _, p in declared(cls.params)
        for value in (*p.choices, p.default)
        if value is not None and not p.required
    }
)
CHOICES = [
    "",
    " ",
    "0",
    "1",
    "-1",
    "5",
    "2.5",
    "1e308",
    "-0",
    "nan",
    "inf",
    "true",
    "false",
    "TRUE",
    "yes",
    "1,2,10-20",
    "3-1",
    "x" * 300,
    "9" * 5000,  # more digits than Python's int() converts
    "ünïcödé-ключ",
    "a\x00b",
    "%2F",
    "/",
    "30s",
    "1500",
    "-----BEGIN CERTIFICATE-----",
    *CLOSED,
    f"amqp://user:{SECRET}@127.0.0.1:1/%2F",
    f"http://user:{SECRET}@127.0.0.1:1/vh",
    f"https://user:{SECRET}@127.0.0.1:1",
    f"redis://:{SECRET}@127.0.0.1:1",
    "ftp://x",
    "://",
    *DECLARED_VALUES,
]
values = st.one_of(st.sampled_from(CHOICES), st.text(max_size=40))


@st.composite
def metadata(draw: st.DrawFn, backend: str | None = None) -> dict[str, str]:
    name = backend or draw(st.sampled_from([*KEYS, "nats", ""]))
    keys = KEYS.get(name, [])
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))) if keys else []
    meta = {k + draw(st.sampled_from(["", "", "FromEnv"])): draw(values) for k in chosen}
    meta.update(draw(st.dictionaries(st.text(max_size=12), values, max_size=3)))
    if draw(st.booleans()):
        meta["password"] = SECRET
    if name:
        meta["backend"] = name
    return meta


FUZZ_SETTINGS = Settings(cache_ttl=0.0, backend_timeout=0.3)
ENGINE = build_engine(FUZZ_SETTINGS, backends=build_backends(0.3, BACKENDS))
MEASUREMENTS = [
    Measurement(0.0),
    Measurement(7.0, {"type": "list"}),
    Measurement(  # several Redis keys, each an item with the facts any measure reads
        3.0,
        {"keys": 1.0},
        (
            {
                "key": "k",
                "value": 3.0,
                "type": "list",
                "oldest_age_seconds": 2.0,
                "in_flight": 1.0,
                "stream_exists": 1.0,
                "group_exists": 1.0,
                "pending": 1.0,
                "lag": 1.0,
                "oldest_pending_age_seconds": 1.0,
            },
        ),
    ),
    Measurement(
        3.0,
        {},
        (
            {
                "topic": "t",
                "partition": 0,
                "committed": -1,
                "log_end": 9,
                "log_start": 2,
                "unchanged_for": 100.0,
            },
        ),
    ),
    Measurement(
        4.0,
        {
            "messages": 4.0,
            "messages_ready": 3.0,
            "messages_unacknowledged": 1.0,
            "publish_rate": 0.5,
            "deliver_get_rate": 0.0,
        },
        (
            {
                "messages": 4.0,
                "messages_ready": 3.0,
                "messages_unacknowledged": 1.0,
                "publish_rate": 0.5,
                "deliver_get_rate": 0.0,
            },
        ),
    ),
]


@pytest.mark.parametrize("backend", [*KEYS, None])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parsing_returns_a_trigger_or_one_metadata_error(
    backend: str | None, data: st.DataObject
) -> None:
    meta = data.draw(metadata(backend))
    try:
        trigger = ENGINE.parse(meta).trigger
    except MetadataError as err:
        error: MetadataError | None = err
    else:
        error = None
    if error is not None:
        assert error.problems
        assert SECRET not in str(error)
        return
    assert trigger.metric_name()
    assert math.isfinite(trigger.target)
    assert trigger.target > 0
    assert SECRET not in repr(trigger)
    assert SECRET not in trigger.resource_label()
    for measurement in MEASUREMENTS:
        try:
            evaluation = trigger.evaluate(measurement)
        except MetadataError:
            continue  # e.g. a partitionLimitation that leaves no partition
        except (KeyError, ValueError, TypeError):
            continue  # a measurement of another backend's shape: not a real combination
        assert math.isfinite(evaluation.value)


RESOURCE_NAMES = [
    (cls.name, p.key)
    for cls in BACKENDS
    for _, p in declared(cls.params)
    if p.convert is resource_name
]


@pytest.mark.parametrize(("backend", "key"), RESOURCE_NAMES)
def test_a_connection_string_as_a_name_is_refused_without_its_password(
    backend: str, key: str
) -> None:
    # found by a 100,000-example run: as a name, the password reached repr and metric labels
    with pytest.raises(MetadataError) as err:
        ENGINE.parse({"backend": backend, key: f"amqp://user:{SECRET}@127.0.0.1:1/%2F"})
    assert any(p.startswith(f"{backend}: {key}:") for p in err.value.problems)
    assert "URI with a password" in str(err.value)
    assert SECRET not in str(err.value)


def test_every_built_in_backend_declares_its_resource_names() -> None:
    assert {"redis", "kafka", "rabbitmq"} <= {backend for backend, _ in RESOURCE_NAMES}


ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}


async def test_fuzzed_metadata_over_grpc_gets_documented_statuses_only(serve) -> None:
    running = await serve(backend_timeout=0.3, cache_ttl=0.0)
    rng = random.Random(20261127)  # reproducible; the parsing test above explores widely
    samples = []
    for _ in range(150):
        backend = rng.choice([*KEYS, "nats"])
        keys = KEYS.get(backend, [])
        sample = {k: rng.choice(CHOICES) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        sample["backend"] = backend
        if rng.random() < 0.5:
            sample["password"] = SECRET
        samples.append(sample)
    codes: set[grpc.StatusCode] = set()
    for meta in samples:
        # only loopback brokers where nothing listens: never reach out to a generated host
        for key, kind in ENDPOINTS.get(meta["backend"], {}).items():
            for name in (key, key + "FromEnv"):
                if name in meta:
                    closed = CLOSED_BY_KIND[kind]
                    meta[name] = closed[len(meta[name]) % len(closed)]
        for call in (
            running.stub.GetMetricSpec(ref(meta)),
            running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(meta), metricName="")),
            running.stub.IsActive(ref(meta)),
        ):
            try:
                await call
            except grpc.aio.AioRpcError as err:
                code, details = err.code(), err.details() or ""
            else:
                code, details = grpc.StatusCode.OK, ""
            codes.add(code)
            assert code in ALLOWED, (meta, details)
            assert SECRET not in details
    assert grpc.StatusCode.INVALID_ARGUMENT in codes
    assert (
        running.sample(
            "keda_queue_scaler_backend_errors_total", {"backend": "redis", "reason": "bug"}
        )
        == 0
    )
