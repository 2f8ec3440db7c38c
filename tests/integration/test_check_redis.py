"""``check --json`` against a real Redis: the values are what Redis itself reports."""

from __future__ import annotations

import argparse
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
import yaml

from scaler.app import build_engine
from scaler.engine import Engine
from scaler.settings import Settings
from scaler.tools import check

pytestmark = pytest.mark.integration

PASSWORD_VARIABLE = "CHECK_TEST_REDIS_PASSWORD"


@pytest.fixture
def check_redis_url(redis_url: str) -> str:
    return redis_url


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=2.0))
    yield engine
    await engine.aclose()


def redis_metadata(url: str, list_name: str, list_length: str) -> dict[str, str]:
    """Trigger metadata for the Redis at ``url``; a password goes through ``passwordFromEnv``."""
    parts = urlsplit(url)
    metadata = {
        "scalerAddress": "keda-queue-scaler.keda:9090",
        "backend": "redis",
        "address": f"{parts.hostname}:{parts.port or 6379}",
        "databaseIndex": parts.path.strip("/") or "0",
        "listName": list_name,
        "listLength": list_length,
    }
    if parts.username:
        metadata["username"] = parts.username
    if parts.password:
        metadata["passwordFromEnv"] = PASSWORD_VARIABLE
    if parts.scheme == "rediss":
        metadata["enableTLS"] = "true"
    return metadata


def manifest(tmp_path: Path, *triggers: dict[str, str]) -> Path:
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"name": "worker"},
            "maxReplicaCount": 20,
            "triggers": [{"type": "external", "metadata": m} for m in triggers],
        },
    }
    path = tmp_path / "scaledobject.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


async def run_json(engine: Engine, path: Path, url: str) -> tuple[int, list[dict[str, Any]]]:
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    args = parser.parse_args([str(path), "--json", "--timeout", "3"])
    password = urlsplit(url).password
    environ = {PASSWORD_VARIABLE: password} if password else {}
    out = io.StringIO()
    status = await check.run(args, engine, environ, out)
    rows = json.loads(out.getvalue())
    assert isinstance(rows, list)
    return status, rows


async def test_check_json_values_are_redis_list_lengths(
    tmp_path: Path, engine: Engine, check_redis_url: str
) -> None:
    url = check_redis_url
    first, second = f"check-{uuid.uuid4().hex}", f"check-{uuid.uuid4().hex}"
    client = aioredis.from_url(url)
    try:
        await client.rpush(first, *[f"job-{i}" for i in range(7)])
        await client.rpush(second, *[f"job-{i}" for i in range(23)])
        path = manifest(
            tmp_path,
            redis_metadata(url, first, "5"),
            redis_metadata(url, second, "10"),
        )

        status, rows = await run_json(engine, path, url)

        lengths = [await client.llen(first), await client.llen(second)]
    finally:
        await client.delete(first, second)
        await client.aclose()
    assert status == 0
    assert lengths == [7, 23]
    assert [
        (r["trigger"], r["backend"], r["metricName"], r["value"], r["target"], r["active"])
        for r in rows
    ] == [
        (0, "redis", f"redis-{first}", lengths[0], 5, True),
        (1, "redis", f"redis-{second}", lengths[1], 10, True),
    ]
    assert [r["desiredReplicas"] for r in rows] == [2, 3]  # ceil(7/5), ceil(23/10)
    assert [r["error"] for r in rows] == [None, None]
    assert {r["object"] for r in rows} == {"ScaledObject/shop/orders"}


async def test_check_unreachable_redis_is_an_error_not_zero(
    tmp_path: Path, engine: Engine, check_redis_url: str
) -> None:
    url = check_redis_url
    key = f"check-{uuid.uuid4().hex}"
    unreachable = {**redis_metadata(url, key, "5"), "address": "127.0.0.1:1"}
    path = manifest(tmp_path, unreachable, redis_metadata(url, key, "5"))

    status, rows = await run_json(engine, path, url)

    assert status == 1
    assert rows[0]["value"] is None
    assert rows[0]["desiredReplicas"] is None
    assert "127.0.0.1:1" in rows[0]["error"]
    # a missing key is 0, as in KEDA (Redis deletes empty lists): inactive, scaled to zero
    assert (rows[1]["value"], rows[1]["active"], rows[1]["desiredReplicas"]) == (0, False, 0)
