"""The status page and API: after KEDA-pattern traffic from three ScaledObjects, one with bad
metadata, ``/status.json`` and ``/status`` show three triggers with the broken one first, its
error, the shared resources, and no secret; rows expire; ``status`` prints the same; the page
can be turned off."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import urllib.error
import urllib.request

import grpc
import pytest

from scaler.backends.base import Measurement
from scaler.errors import BackendUnavailable
from scaler.proto import externalscaler_pb2 as pb
from scaler.status import EXPIRY, StatusBoard
from scaler.status_page import render, sparkline
from scaler.tools import status as status_command
from tests.conftest import ref

SECRET = "s3cret-never-on-the-page"


def _get(port: int, path: str) -> tuple[str, str]:
    url = f"http://127.0.0.1:{port}{path}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return response.headers.get("Content-Type", ""), body.decode()


async def _keda_round(running, metadata: dict[str, str], name: str) -> None:
    """What KEDA does for one ScaledObject: GetMetricSpec, then GetMetrics and IsActive."""
    request = ref(metadata, name=name, namespace="shop")
    try:
        [spec] = (await running.stub.GetMetricSpec(request)).metricSpecs
    except grpc.aio.AioRpcError:
        return  # KEDA logs "got empty metric spec" and tries again later
    await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=request, metricName=spec.metricName)
    )
    await running.stub.IsActive(request)


async def test_three_scaled_objects_one_broken_first_with_its_error_and_no_secret(
    serve, fake_backend
) -> None:
    fake_backend.values.update({"orders": 12.0, "emails": 0.0})
    running = await serve()
    good = [
        ({"backend": "fake", "name": "orders", "target": "5"}, "orders-consumer"),
        ({"backend": "fake", "name": "emails", "target": "2"}, "emails-consumer"),
    ]
    bad = {"backend": "redis", "address": "redis:6379", "password": SECRET, "listLength": "0"}
    for _ in range(3):
        for metadata, name in good:
            await _keda_round(running, metadata, name)
        await _keda_round(running, bad, "jobs-consumer")
    kind, body = await asyncio.to_thread(_get, running.app.metrics_port, "/status.json")
    assert kind == "application/json"
    status = json.loads(body)
    triggers = status["triggers"]
    assert (triggers[0]["name"], triggers[0]["broken"]) == ("jobs-consumer", True)
    assert sorted(t["name"] for t in triggers) == [
        "emails-consumer",
        "jobs-consumer",
        "orders-consumer",
    ]
    broken = triggers[0]
    assert broken["error"]["code"] == "INVALID_ARGUMENT"
    for key in ("listName", "listLength"):
        assert key in broken["error"]["message"]
    assert broken["calls"] == {"GetMetricSpec": 3}
    orders = next(t for t in triggers if t["name"] == "orders-consumer")
    assert (orders["value"], orders["target"], orders["active"]) == (12.0, 5.0, True)
    assert orders["calls"] == {"GetMetricSpec": 3, "GetMetrics": 3, "IsActive": 3}
    assert (orders["metric_name"], orders["namespace"]) == ("fake-orders", "shop")
    [resource] = [r for r in status["resources"] if r["resource"].endswith("orders")]
    assert (resource["value"], resource["readers"], resource["consecutive_errors"]) == (12, 1, 0)
    assert SECRET not in body
    kind, page = await asyncio.to_thread(_get, running.app.metrics_port, "/status")
    assert kind.startswith("text/html")
    assert "<script" not in page
    assert page.index("jobs-consumer") < page.index("orders-consumer")  # broken first
    assert 'class="broken"' in page
    assert SECRET not in page
    # the command prints the same, as a table and as JSON
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(
        address=f"127.0.0.1:{running.app.metrics_port}", json=False, timeout=5.0
    )
    assert await asyncio.to_thread(status_command.run, args, out, err) == 0
    table = out.getvalue().splitlines()
    assert table[0] == "TRIGGERS (3, 1 broken)"
    assert table[2].startswith("BROKEN  shop/jobs-consumer")
    out = io.StringIO()
    args.json = True
    assert await asyncio.to_thread(status_command.run, args, out, err) == 0
    assert [t["name"] for t in json.loads(out.getvalue())["triggers"]] == [
        t["name"] for t in triggers
    ]


async def test_a_failing_resource_shows_its_errors_and_the_page_can_be_turned_off(
    serve, fake_backend
) -> None:
    fake_backend.values["down"] = BackendUnavailable("broker refused the connection")
    running = await serve()
    metadata = {"backend": "fake", "name": "down"}
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await running.stub.IsActive(ref(metadata))
        await asyncio.sleep(running.app.settings.cache_ttl)
    status = json.loads(
        (await asyncio.to_thread(_get, running.app.metrics_port, "/status.json"))[1]
    )
    [resource] = status["resources"]
    assert resource["consecutive_errors"] >= 2
    assert resource["error"]["code"] == "BackendUnavailable"
    assert status["triggers"][0]["error"]["code"] == "UNAVAILABLE"
    off = await serve(status=False)
    _, body = await asyncio.to_thread(_get, off.app.metrics_port, "/metrics")
    assert "keda_queue_scaler" in body
    _, body = await asyncio.to_thread(_get, off.app.metrics_port, "/status.json")
    assert not body.startswith("{")  # no status: the metrics app answers every other path


def test_rows_expire_and_the_snapshot_caps_rows_and_says_how_many_it_left_out() -> None:
    now = [1_000_000.0]
    board = StatusBoard({"fake"}, max_rows=50, clock=lambda: now[0])
    for i in range(30):
        board.call(("ns", f"so-{i}", i), "fake", "IsActive", None)
        board.measured("fake", f"q{i}", Measurement(float(i)))
    snapshot = board.snapshot(limit=10)
    assert (len(snapshot["triggers"]), snapshot["triggers_left_out"]) == (10, 20)
    assert (len(snapshot["resources"]), snapshot["resources_left_out"]) == (10, 20)
    now[0] += EXPIRY + 1
    board.call(("ns", "fresh", 0), "fake", "IsActive", None)
    snapshot = board.snapshot()
    assert [t["name"] for t in snapshot["triggers"]] == ["fresh"]
    assert snapshot["resources"] == []
    for i in range(80):  # bounded memory: at most max_rows of each kind
        board.call(("ns", f"flood-{i}", i), "no-such-backend", "GetMetrics", ("X", "y"))
    snapshot = board.snapshot(limit=1000)
    assert len(snapshot["triggers"]) == 50
    assert {t["backend"] for t in snapshot["triggers"]} == {"unknown"}  # never metadata's word


def test_sparkline_is_an_inline_svg_of_the_last_fifteen_minutes() -> None:
    now = [0.0]
    board = StatusBoard({"fake"}, clock=lambda: now[0])
    for i in range(120):  # 20 minutes, a read every 10 s
        now[0] = i * 10.0
        board.measured("fake", "q", Measurement(float(i % 7)))
    [resource] = board.snapshot()["resources"]
    assert len(resource["history"]) == 91  # 15 minutes of 10 s points
    assert resource["history"][0][0] == -900.0
    svg = sparkline(resource["history"])
    assert svg.startswith("<svg")
    assert "<polyline" in svg
    assert "script" not in svg
    assert "<svg" in render(board.snapshot())
