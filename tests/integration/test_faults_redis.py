"""Redis faults while the scaler serves: pause (SIGSTOP), kill (SIGKILL), a black hole.

Every RPC during a fault returns an error within the backend timeout, never 0 or false; other
ScaledObjects on healthy brokers keep answering fast; values come back after the broker does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import pytest

from scaler.proto import externalscaler_pb2 as pb
from tests.conftest import ref
from tests.streams import StreamReader

pytestmark = pytest.mark.integration

TIMEOUT = 0.5


async def _timed_error(call) -> tuple[grpc.StatusCode, float]:
    start = time.perf_counter()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), time.perf_counter() - start


async def test_black_hole_is_deadline_exceeded_and_healthy_triggers_stay_fast(
    serve, black_hole, redis_client, unique_key, redis_metadata
) -> None:
    healthy_key = unique_key("healthy")
    await redis_client.rpush(healthy_key, "a", "b")
    running = await serve(backend_timeout=TIMEOUT, cache_ttl=0.0)
    dead = {"backend": "redis", "address": black_hole, "listName": "q"}
    hanging = [
        asyncio.ensure_future(_timed_error(running.stub.IsActive(ref(dead, name=f"dead-{i}"))))
        for i in range(20)
    ]
    await asyncio.sleep(0.05)
    durations = []
    for _ in range(20):
        start = time.perf_counter()
        reply = await running.stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(redis_metadata(healthy_key)), metricName="")
        )
        durations.append(time.perf_counter() - start)
        assert reply.metricValues[0].metricValue == 2
    # not queued behind the black hole: a healthy call waiting on a hanging read would take
    # most of TIMEOUT; a bound at half of it tells the two apart without timing the machine
    assert max(durations) < TIMEOUT / 2, durations
    for code, seconds in await asyncio.gather(*hanging):
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert seconds < TIMEOUT + 0.3


async def test_paused_redis_errors_in_time_then_values_return(serve, own_redis, unique_key) -> None:
    import redis.asyncio as aioredis

    key = unique_key("paused")
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    metadata = {"backend": "redis", "address": own_redis.address, "listName": key}
    try:
        await client.rpush(key, 1, 2, 3)
        running = await serve(backend_timeout=TIMEOUT, cache_ttl=0.0)
        stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
        assert await stream.next() is True
        os.kill(own_redis.pid, signal.SIGSTOP)  # sockets stay open, nothing answers
        try:
            for call in (
                running.stub.IsActive(ref(metadata)),
                running.stub.GetMetrics(
                    pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
                ),
            ):
                code, seconds = await _timed_error(call)
                assert code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
                assert seconds < TIMEOUT + 0.3
            assert await stream.nothing_for(0.3)
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        deadline = time.monotonic() + 2 * TIMEOUT + 2
        while True:
            try:
                reply = await running.stub.GetMetrics(
                    pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")
                )
                break
            except grpc.aio.AioRpcError:
                assert time.monotonic() < deadline, "values did not return after SIGCONT"
                await asyncio.sleep(0.1)
        assert reply.metricValues[0].metricValue == await client.llen(key) == 3
        assert not stream.task.done()
        stream.cancel()
    finally:
        await client.aclose()


async def test_killed_redis_errors_then_recovers_and_the_stream_activates(
    serve, own_redis, unique_key
) -> None:
    import redis.asyncio as aioredis

    key = unique_key("killed")
    metadata = {"backend": "redis", "address": own_redis.address, "listName": key}
    running = await serve(backend_timeout=TIMEOUT, cache_ttl=0.0)
    stream = StreamReader(running.stub.StreamIsActive(ref(metadata)))
    assert await stream.next() is False
    os.kill(own_redis.pid, signal.SIGKILL)
    await asyncio.sleep(0.1)
    code, seconds = await _timed_error(running.stub.IsActive(ref(metadata)))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert seconds < TIMEOUT + 0.3
    await own_redis.start()
    client = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        await client.rpush(key, "x")
        assert await stream.next(timeout=5) is True
        assert (await running.stub.IsActive(ref(metadata))).result is True
    finally:
        await client.aclose()
    stream.cancel()
