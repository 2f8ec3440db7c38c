"""Connection profiles against a real Redis: credentials stay server-side and out of every output."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.integration.test_redis_rpc import scrape

pytestmark = pytest.mark.integration


async def test_profile_credentials_work_and_never_leak(
    serve, redis_client, redis_url, unique_key, tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    user = unique_key("profile-user")
    right, wrong = "right-profile-pw-41d", "wrong-profile-pw-93c"
    await redis_client.execute_command("ACL", "SETUSER", user, "on", f">{right}", "~*", "+@all")
    address = redis_url.split("//", 1)[1].split("/", 1)[0]
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        "connections:\n"
        f"  good:\n    backend: redis\n    address: {address}\n    username: {user}\n    password: {right}\n"
        f"  bad:\n    backend: redis\n    address: {address}\n    username: {user}\n    password: {wrong}\n"
    )
    key = unique_key("profile-jobs")
    await redis_client.rpush(key, 1, 2, 3, 4)
    try:
        running = await serve(profiles=str(profiles), require_profiles=True)
        good = {"connection": "good", "listName": key, "listLength": "2"}
        reply = await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(good), metricName="")
        )
        assert reply.metricValues[0].metricValue == await redis_client.llen(key) == 4
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.IsActive(ref({"connection": "bad", "listName": key}))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # a ScaledObject cannot point the scaler at another host, even with a profile's help
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await running.stub.IsActive(
                ref({"connection": "good", "listName": key, "address": "10.0.0.1:6379"})
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        outputs = [
            err.value.details() or "",
            refused.value.details() or "",
            caplog.text,
            await scrape(running.app.metrics_port),
            repr(running.app.engine.profiles),
            repr(running.app.engine.parse(good).trigger),
        ]
        for output in outputs:
            assert right not in output
            assert wrong not in output
    finally:
        await redis_client.execute_command("ACL", "DELUSER", user)
