"""The status page in a real headless Chromium (Debian's ``chromium``): after KEDA-pattern
traffic from three ScaledObjects on a real Redis, one with bad metadata, the DOM shows three
trigger rows with the broken one first and its error, and no secret; ``/status.json`` says the
same; a screenshot is taken (``SCALER_TEST_UPDATE_SCREENSHOT=1`` writes it to docs/images/); rows
expire."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from scaler.status import EXPIRY
from scaler.tools.status import fetch
from tests.conftest import ref
from tests.integration.conftest import unavailable

pytestmark = pytest.mark.integration

SECRET = "s3cret-browser-never-shown"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "status-page.png"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = os.environ.get("SCALER_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        unavailable("chromium is not installed (scripts/brokers.sh start chromium)")
    return found


def _browser(chromium: str, url: str, *args: str) -> str:
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _rows(dom: str, table: str) -> list[str]:
    body = dom.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr(?: class=\"broken\")?><td>.*?</tr>", body, re.S)


async def _keda_round(running, metadata: dict[str, str], name: str) -> None:
    request = ref(metadata, name=name, namespace="shop")
    try:
        [spec] = (await running.stub.GetMetricSpec(request)).metricSpecs
    except grpc.aio.AioRpcError:
        return
    await running.stub.GetMetrics(
        pb.GetMetricsRequest(scaledObjectRef=request, metricName=spec.metricName)
    )
    await running.stub.IsActive(request)


async def test_the_page_in_a_real_browser(
    serve, chromium: str, redis_client, unique_key, redis_metadata, tmp_path: Path
) -> None:
    orders, emails = unique_key("orders"), unique_key("emails")
    await redis_client.rpush(orders, *range(12))
    await redis_client.rpush(emails, *range(3))
    running = await serve()
    bad = {**redis_metadata(orders), "listLength": "0", "password": SECRET}
    del bad["listName"]
    for _ in range(3):
        await _keda_round(running, redis_metadata(orders, listLength="5"), "orders-consumer")
        await _keda_round(running, redis_metadata(emails, listLength="2"), "emails-consumer")
        await _keda_round(running, bad, "jobs-consumer")
        await asyncio.sleep(0.2)
    url = f"http://127.0.0.1:{running.app.metrics_port}/status"
    dom = await asyncio.to_thread(_browser, chromium, url, "--dump-dom")
    rows = _rows(dom, "triggers")
    assert len(rows) == 3
    assert 'class="broken"' in rows[0]
    assert "jobs-consumer" in rows[0]
    assert "INVALID_ARGUMENT" in rows[0]
    assert "missing required parameter listName" in rows[0]
    assert SECRET not in dom
    assert {
        name for name in ("orders-consumer", "emails-consumer") if any(name in r for r in rows[1:])
    } == {
        "orders-consumer",
        "emails-consumer",
    }
    # /status.json says the same (read as `keda-queue-scaler status --json` reads it)
    status = await asyncio.to_thread(fetch, f"127.0.0.1:{running.app.metrics_port}", 5.0)
    assert [t["name"] for t in status["triggers"]] == [
        re.search(r"<td>shop</td><td>([^<]+)</td>", row)[1]  # type: ignore[index]
        for row in rows
    ]
    shot = tmp_path / "status.png"
    await asyncio.to_thread(
        _browser, chromium, url, f"--screenshot={shot}", "--window-size=1900,760"
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SCALER_TEST_UPDATE_SCREENSHOT") == "1":
        DOCS_IMAGE.parent.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS_IMAGE)
    # an hour later, with no call since, the rows are gone
    board = running.app.status
    assert board is not None
    later = board._clock() + EXPIRY + 1
    board._clock = lambda: later
    dom = await asyncio.to_thread(_browser, chromium, url, "--dump-dom")
    assert _rows(dom, "triggers") == []
    assert _rows(dom, "resources") == []
