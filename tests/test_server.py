"""Every RPC over a real gRPC channel against the fake backend: names, values, status codes."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from scaler.errors import BackendAuthError, BackendTimeout, BackendUnavailable, TargetNotFound
from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.fakes import FakeBackend

FAKE = {"backend": "fake", "name": "Jobs.Queue", "target": "2.5", "activation": "3"}


async def test_metric_spec_name_and_both_target_fields(serve) -> None:
    running = await serve()
    reply = await running.stub.GetMetricSpec(ref(FAKE))
    assert len(reply.metricSpecs) == 1
    spec = reply.metricSpecs[0]
    assert spec.metricName == "fake-Jobs-Queue"  # KEDA's NormalizeString: case is kept
    assert spec.targetSizeFloat == 2.5
    assert spec.targetSize == 3


async def test_keda_call_pattern_bare_name_then_is_active(serve, fake_backend: FakeBackend) -> None:
    fake_backend.values["Jobs.Queue"] = 7.5
    running = await serve()
    name = (await running.stub.GetMetricSpec(ref(FAKE))).metricSpecs[0].metricName
    metrics = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(FAKE), metricName=name)
    )
    assert [(v.metricName, v.metricValueFloat, v.metricValue) for v in metrics.metricValues] == [
        (name, 7.5, 8)
    ]
    assert (await running.stub.IsActive(ref(FAKE))).result is True
    # the GetMetrics + IsActive pair of one poll cost one backend read
    assert fake_backend.reads["Jobs.Queue"] == 1


@pytest.mark.parametrize(
    "asked", ["FAKE-JOBS-QUEUE", "fake-jobs-queue", "s0-fake-jobs-queue", "s3-Fake-Jobs-Queue", ""]
)
async def test_get_metrics_matches_name_case_insensitively(serve, fake_backend, asked) -> None:
    fake_backend.values["Jobs.Queue"] = 4
    running = await serve()
    reply = await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=ref(FAKE), metricName=asked)
    )
    assert reply.metricValues[0].metricValueFloat == 4
    assert reply.metricValues[0].metricName == (asked or "fake-Jobs-Queue")


async def test_get_metrics_refuses_a_name_it_does_not_serve(serve) -> None:
    running = await serve()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(FAKE), metricName="other")
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "fake-Jobs-Queue" in (err.value.details() or "")


@pytest.mark.parametrize(("value", "active"), [(0, False), (3, False), (3.01, True), (100, True)])
async def test_activation_is_strictly_greater_than_threshold(
    serve, fake_backend, value, active
) -> None:
    fake_backend.values["Jobs.Queue"] = value
    running = await serve()
    assert (await running.stub.IsActive(ref(FAKE))).result is active


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BackendUnavailable("down"), grpc.StatusCode.UNAVAILABLE),
        (BackendTimeout("slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (BackendAuthError("who"), grpc.StatusCode.UNAUTHENTICATED),
        (TargetNotFound("gone"), grpc.StatusCode.NOT_FOUND),
        (RuntimeError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
async def test_backend_errors_are_statuses_never_zero(serve, fake_backend, error, code) -> None:
    fake_backend.values["Jobs.Queue"] = error
    running = await serve()
    for call in (
        running.stub.IsActive(ref(FAKE)),
        running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(FAKE), metricName="fake-jobs-queue")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code


async def test_bad_metadata_lists_every_problem_without_secrets(serve) -> None:
    running = await serve()
    bad = {"backend": "fake", "target": "ten", "activation": "x1", "password": "hunter2-secret"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetricSpec(ref(bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    for expected in ("missing required parameter name", "target: 'ten'", "activation: 'x1'"):
        assert expected in details
    assert "hunter2" not in details


async def test_unknown_backend_and_missing_backend(serve) -> None:
    running = await serve()
    for metadata, expected in (
        ({"backend": "nats"}, "backend: 'nats' must be one of"),
        ({}, "missing required parameter backend"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.IsActive(ref(metadata))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert expected in (err.value.details() or "")


async def test_caller_deadline_bounds_the_backend_call(serve, fake_backend) -> None:
    fake_backend.delay = 5
    running = await serve(backend_timeout=3.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref(FAKE), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - start < 1.0


async def test_backend_timeout_is_deadline_exceeded(serve, fake_backend) -> None:
    fake_backend.delay = 5
    running = await serve(backend_timeout=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.IsActive(ref(FAKE), timeout=5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "no answer within 0.2s" in (err.value.details() or "")


async def test_stream_metric_spec_sends_specs_at_once_equal_to_get_metric_spec(serve) -> None:
    running = await serve()
    call = running.stub.StreamMetricSpec(ref(FAKE))
    first = await asyncio.wait_for(call.read(), 2)
    assert first == await running.stub.GetMetricSpec(ref(FAKE))
    assert len(first.metricSpecs) == 1
    call.cancel()


async def test_stream_metric_spec_bad_metadata_is_invalid_argument(serve) -> None:
    running = await serve()
    call = running.stub.StreamMetricSpec(ref({"backend": "fake"}))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "metadata",
    [
        {"backend": "fake", "name": "q", "blob": "x" * 1_000_000},
        {"backend": "fake", "name": "q", **{f"k{i}": "v" for i in range(10_000)}},
    ],
    ids=["1 MB value", "10,000 keys"],
)
async def test_huge_metadata_is_refused_cheaply(serve, fake_backend, metadata) -> None:
    running = await serve()
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.IsActive(ref(metadata))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert loop.time() - start < 5  # generous: a cheap refusal, not a parse per call
    assert "refused unread" in (err.value.details() or "") or "keys" in (err.value.details() or "")
    assert fake_backend.reads == {}
