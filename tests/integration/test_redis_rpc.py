"""The service against a real Redis over a real gRPC channel, compared with Redis's own view."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.streams import StreamReader

pytestmark = pytest.mark.integration


async def scrape(port: int) -> str:
    def get() -> str:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
        return body.decode()

    return await asyncio.to_thread(get)


def _get_metrics(metadata, name: str) -> pb.GetMetricsRequest:
    return pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=name)


async def test_keda_poll_and_hpa_call_patterns(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    key = unique_key("Orders.Queue")
    await redis_client.rpush(key, *range(12))
    metadata = redis_metadata(key, listLength="5", activationListLength="11")
    running = await serve()
    # poll: GetMetricSpec, then GetMetrics with the bare name, then IsActive
    spec = (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs
    assert [(s.metricName, s.targetSize, s.targetSizeFloat) for s in spec] == [
        (f"redis-{key.replace('.', '-')}", 5, 5.0)  # KEDA's NormalizeString keeps the case
    ]
    name = spec[0].metricName
    values = (await running.stub.GetMetrics(_get_metrics(metadata, name))).metricValues
    assert [(v.metricName, v.metricValue, v.metricValueFloat) for v in values] == [(name, 12, 12.0)]
    assert (await running.stub.IsActive(ref(metadata))).result is True  # 12 > 11
    # HPA path: the name arrives lower-cased, with the ~3 s deadline of KEDA's metrics adapter
    values = (
        await running.stub.GetMetrics(_get_metrics(metadata, name.lower()), timeout=3)
    ).metricValues
    assert values[0].metricValueFloat == await redis_client.llen(key)
    await redis_client.lpop(key)  # 11 is not > 11
    await asyncio.sleep(running.app.settings.cache_ttl)
    assert (await running.stub.IsActive(ref(metadata))).result is False


@pytest.mark.parametrize("kind", ["list", "set", "zset", "hash", "missing"])
async def test_value_equals_redis_own_count_for_each_key_type(
    serve, redis_client, unique_key, redis_metadata, kind
) -> None:
    key = unique_key(kind)
    members = [f"m{i}" for i in range(17)]
    if kind == "list":
        await redis_client.rpush(key, *members)
        expected = await redis_client.llen(key)
    elif kind == "set":
        await redis_client.sadd(key, *members, "m0")
        expected = await redis_client.scard(key)
    elif kind == "zset":
        await redis_client.zadd(key, {m: i for i, m in enumerate(members)})
        expected = await redis_client.zcard(key)
    elif kind == "hash":
        await redis_client.hset(key, mapping={m: 1 for m in members})
        expected = await redis_client.hlen(key)
    else:
        expected = 0
        assert await redis_client.exists(key) == 0
    running = await serve()
    metadata = redis_metadata(key)
    reply = await running.stub.GetMetrics(_get_metrics(metadata, ""))
    assert reply.metricValues[0].metricValueFloat == expected
    assert reply.metricValues[0].metricValue == expected
    assert (await running.stub.IsActive(ref(metadata))).result is (expected > 0)


@pytest.mark.parametrize("kind", ["string", "stream"])
async def test_unsupported_key_type_is_an_error_naming_the_type(
    serve, redis_client, unique_key, redis_metadata, kind
) -> None:
    key = unique_key(kind)
    if kind == "string":
        await redis_client.set(key, "42")
    else:
        await redis_client.xadd(key, {"f": "v"})
    running = await serve()
    for call in (
        running.stub.GetMetrics(_get_metrics(redis_metadata(key), "")),
        running.stub.IsActive(ref(redis_metadata(key))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"is a {kind}" in (err.value.details() or "")


async def test_bad_metadata_one_error_naming_every_key_and_no_password(serve, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    running = await serve()
    secret = "pw-9f8e7d-never-shown"
    metadata = {
        "backend": "redis",
        "address": "localhost",
        "listLength": "five",
        "activationListLength": "-3",
        "databaseIndex": "zero",
        "enableTLS": "maybe",
        "password": secret,
    }
    for call in (
        running.stub.GetMetricSpec(ref(metadata)),
        running.stub.GetMetrics(_get_metrics(metadata, "x")),
        running.stub.IsActive(ref(metadata)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = err.value.details() or ""
        for problem in (
            "address: 'localhost' is not host:port",
            "missing required parameter listName",
            "listLength: 'five' is not a valid integer",
            "activationListLength: '-3' must be 0 or greater",
            "databaseIndex: 'zero' is not a valid integer",
            "enableTLS: 'maybe' is not a boolean",
        ):
            assert problem in details
        assert secret not in details
    assert secret not in caplog.text


async def test_wrong_password_is_unauthenticated_and_never_echoed(
    serve, redis_client, unique_key, redis_metadata, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    user = unique_key("keda-user")
    await redis_client.execute_command(
        "ACL", "SETUSER", user, "on", ">right-password-123", "~*", "+@all"
    )
    try:
        running = await serve()
        key = unique_key("jobs")
        wrong = redis_metadata(key, username=user, password="wrong-password-456")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await running.stub.IsActive(ref(wrong))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "wrong-password-456" not in (err.value.details() or "")
        assert "wrong-password-456" not in caplog.text
        right = redis_metadata(key, username=user, passwordFromEnv="right-password-123")
        assert (await running.stub.IsActive(ref(right))).result is False
        metrics_text = await scrape(running.app.metrics_port)
        assert "password" not in metrics_text
        assert (
            'keda_queue_scaler_backend_errors_total{backend="redis",reason="auth"} 1.0'
            in metrics_text
        )
    finally:
        await redis_client.execute_command("ACL", "DELUSER", user)


async def test_redis_down_errors_within_timeout_then_recovers_without_restart(
    serve, own_redis, unique_key
) -> None:
    key = unique_key("jobs")
    metadata = {"backend": "redis", "address": own_redis.address, "listName": key}
    running = await serve(backend_timeout=1.0, cache_ttl=0.0)
    import redis.asyncio as aioredis

    direct = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        await direct.rpush(key, 1, 2, 3)
        assert (await running.stub.GetMetrics(_get_metrics(metadata, ""))).metricValues[
            0
        ].metricValue == 3
        stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
        assert await stream.next() is True
        await own_redis.stop()
        loop = asyncio.get_running_loop()
        for method, request in (
            (running.stub.GetMetrics, _get_metrics(metadata, "")),
            (running.stub.IsActive, ref(metadata)),
        ):
            start = loop.time()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await method(request)
            assert err.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            assert loop.time() - start < 1.0 + 0.5
        # GetMetricSpec needs no broker: it keeps answering so that KEDA's fallback can act
        assert (await running.stub.GetMetricSpec(ref(metadata))).metricSpecs[0].targetSize == 5
        await own_redis.start()
        await direct.aclose()
        direct = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
        await direct.rpush(key, *range(9))
        # the next poll answers: no scaler restart
        values = (await running.stub.GetMetrics(_get_metrics(metadata, ""))).metricValues
        assert values[0].metricValue == await direct.llen(key) == 9
        assert (await running.stub.IsActive(ref(metadata))).result is True
        # the stream stayed open through the outage: the server is still sending on it
        assert not stream.task.done()
        stream.cancel()
    finally:
        await direct.aclose()


async def _command_calls(redis_client) -> dict[str, int]:
    stats = await redis_client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def test_200_concurrent_polls_over_100_scaled_objects_cost_one_redis_command(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    key = unique_key("shared")
    await redis_client.rpush(key, *range(33))
    running = await serve(cache_ttl=5.0)
    warm = unique_key("warm")  # loads the script and opens the connection first
    await running.stub.GetMetrics(_get_metrics(redis_metadata(warm), ""))
    metadata = redis_metadata(key)
    before = await _command_calls(redis_client)
    replies = await asyncio.gather(
        *(
            running.stub.GetMetrics(
                pb.GetMetricsRequest(
                    scaledObjectRef=ref(metadata, name=f"so-{i % 100}"), metricName=""
                )
            )
            for i in range(200)
        )
    )
    after = await _command_calls(redis_client)
    assert {r.metricValues[0].metricValue for r in replies} == {33}
    # commands run inside the script (type, llen) are counted by Redis too; the info calls are ours
    delta = {c: after.get(c, 0) - before.get(c, 0) for c in after}
    top_level = {c: n for c, n in delta.items() if n and c not in ("info", "type", "llen")}
    assert top_level == {"evalsha": 1}
    assert running.sample("keda_queue_scaler_coalescing_total", {"result": "miss"}) == 2


async def test_stream_is_active_edges_on_a_real_list(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    key = unique_key("stream")
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(redis_metadata(key))))
    assert await stream.next() is False  # initial state at once: empty list
    await redis_client.lpush(key, "job-1")
    assert await stream.next() is True
    await redis_client.lpush(key, "job-2", "job-3")
    assert await stream.nothing_for(0.3)
    await redis_client.delete(key)  # drained
    await asyncio.sleep(0.1)
    await redis_client.lpush(key, "job-4")
    assert await stream.next() is True
    stream.cancel()


async def test_stream_metric_spec_sends_specs_at_once(serve, unique_key, redis_metadata) -> None:
    running = await serve()
    metadata = redis_metadata(unique_key("spec"), listLength="7")
    call = running.stub.StreamMetricSpec(ref(metadata))
    first = await asyncio.wait_for(call.read(), 3)
    assert first == await running.stub.GetMetricSpec(ref(metadata))
    assert first.metricSpecs[0].targetSize == 7
    call.cancel()


async def test_health_serving_and_reflection_lists_services(serve) -> None:
    running = await serve()
    health = health_pb2_grpc.HealthStub(running.channel)
    for service in ("", "externalscaler.ExternalScaler"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    responses = reflect.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    async for response in responses:
        names = {s.name for s in response.list_services_response.service}
        assert {"externalscaler.ExternalScaler", "grpc.health.v1.Health"} <= names
        break


async def test_metrics_endpoint_exports_every_family(
    serve, redis_client, unique_key, redis_metadata
) -> None:
    key = unique_key("metrics")
    await redis_client.rpush(key, "a", "b")
    running = await serve()
    metadata = redis_metadata(key)
    await running.stub.GetMetrics(_get_metrics(metadata, ""))
    await running.stub.IsActive(ref(metadata))
    body = await scrape(running.app.metrics_port)
    for family in (
        'keda_queue_scaler_rpc_duration_seconds_count{code="OK",method="GetMetrics"} 1.0',
        'keda_queue_scaler_rpc_duration_seconds_count{code="OK",method="IsActive"} 1.0',
        'keda_queue_scaler_backend_request_duration_seconds_count{backend="redis",outcome="ok"} 1.0',
        'keda_queue_scaler_coalescing_total{result="hit"} 1.0',
        "keda_queue_scaler_open_streams",
        "keda_queue_scaler_push_events_total",
        f'keda_queue_scaler_last_value{{backend="redis",resource="{metadata["address"]}/0/{key}"}} 2.0',
        "keda_queue_scaler_last_success_timestamp_seconds",
    ):
        assert family in body, family
    last = running.sample(
        "keda_queue_scaler_last_success_timestamp_seconds",
        {"backend": "redis", "resource": f"{metadata['address']}/0/{key}"},
    )
    assert abs(last - time.time()) < 10
