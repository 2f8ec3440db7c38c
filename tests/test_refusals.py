"""Bad metadata reaches the user: each distinct error logged once per ScaledObject at WARNING,
naming the object and every bad key, and counted by backend and reason; secrets never shown."""

from __future__ import annotations

import logging

import grpc
import pytest

from scaler.errors import MetadataError
from scaler.refusals import REASONS, Refusals, reason
from tests.conftest import ref

SECRET = "hunter2-never-shown"
BAD = {
    "backend": "redis",
    "address": "redis.svc:6379",
    "password": SECRET,
    "listLength": "0",
    "mode": "OldestAge",
}


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("redis: missing required parameter listName", "missing"),
        ("redis: listLength: '0' must be > 0", "invalid"),
        ("redis: enableTLS and tls cannot both be set", "conflict"),
        ("redis: includeProcessing needs processingListName (the list ...)", "conflict"),
        ("missing required parameter backend (one of redis, kafka)", "backend"),
        ("backend: 'nats' must be one of [redis, kafka]", "backend"),
        ("connection: 'x' is not a profile (known: none)", "profile"),
        ("scalerMetadata has 999 keys; at most 128 are accepted", "size"),
        (
            "metricName: 'x' is not served by this trigger (GetMetricSpec returns 'y')",
            "metric_name",
        ),
    ],
)
def test_each_problem_has_a_bounded_reason(problem: str, expected: str) -> None:
    assert reason(problem, ("redis", "kafka")) == expected
    assert expected in REASONS


def test_told_once_per_scaled_object_and_error(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[tuple[str, str]] = []
    refusals = Refusals({"redis"}, lambda backend, why: counted.append((backend, why)))
    error = MetadataError(["redis: missing required parameter listName", "redis: port: 'x' bad"])
    caplog.set_level(logging.WARNING, logger="scaler.refusals")
    assert refusals.refused("work", "a", "redis", error) is True
    assert refusals.refused("work", "a", "redis", error) is False  # the next poll: quiet
    assert refusals.refused("work", "b", "redis", error) is True  # another ScaledObject
    other = MetadataError(["redis: missing required parameter address"])
    assert refusals.refused("work", "a", "redis", other) is True  # another error
    assert refusals.refused("work", "c", "no-such-backend-" + "x" * 100, other) is True
    assert caplog.records[0].getMessage() == (
        "bad metadata from ScaledObject work/a (backend redis): "
        "redis: missing required parameter listName; redis: port: 'x' bad"
    )
    assert len(caplog.records) == 4
    assert counted == [
        ("redis", "missing"),
        ("redis", "invalid"),
        ("redis", "missing"),
        ("redis", "invalid"),
        ("redis", "missing"),
        ("unknown", "missing"),  # a backend name from metadata never becomes a label
    ]


async def test_bad_metadata_over_grpc_is_logged_once_and_counted_without_the_secret(
    serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running = await serve()
    request = ref(BAD, name="orders-consumer")
    for _ in range(5):  # KEDA's polls and HPA syncs repeat the same bad call
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.GetMetricSpec(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError):
        await running.stub.IsActive(request)
    told = [r for r in caplog.records if r.name == "scaler.refusals"]
    assert len(told) == 1
    assert told[0].levelno == logging.WARNING
    message = told[0].getMessage()
    assert "ScaledObject default/orders-consumer (backend redis)" in message
    for key in ("listName", "listLength", "value", "timestampField"):
        assert key in message, key
    assert SECRET not in caplog.text
    assert (
        running.sample(
            "keda_queue_scaler_metadata_errors_total", {"backend": "redis", "reason": "missing"}
        )
        >= 1
    )
    assert (
        running.sample(
            "keda_queue_scaler_metadata_errors_total", {"backend": "redis", "reason": "invalid"}
        )
        == 1
    )
    # the per-RPC log line of an INVALID_ARGUMENT is DEBUG: no WARNING at every poll
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == told
