"""StreamIsActive edge semantics, shared watchers and shutdown, against the fake backend."""

from __future__ import annotations

import asyncio
import contextlib
import os

import grpc

from scaler.errors import BackendUnavailable
from tests.conftest import ref
from tests.fakes import FakeBackend
from tests.streams import StreamReader

META = {"backend": "fake", "name": "jobs", "activation": "0"}
QUIET = 0.25  # several watch intervals (0.02 s in tests)


async def _until(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_initial_state_then_true_only_on_transitions(
    serve, fake_backend: FakeBackend
) -> None:
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    assert await stream.next() is False  # the current state at once
    fake_backend.values["jobs"] = 1
    assert await stream.next() is True
    fake_backend.values["jobs"] = 5  # still active: nothing more
    assert await stream.nothing_for(QUIET)
    fake_backend.values["jobs"] = 0  # inactive: KEDA ignores false, so nothing is sent
    assert await stream.nothing_for(QUIET)
    fake_backend.values["jobs"] = 2
    assert await stream.next() is True
    stream.cancel()


async def test_initial_state_active(serve, fake_backend: FakeBackend) -> None:
    fake_backend.values["jobs"] = 3
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    assert await stream.next() is True
    assert await stream.nothing_for(QUIET)
    stream.cancel()


async def test_each_stream_applies_its_own_activation(serve, fake_backend: FakeBackend) -> None:
    running = await serve()
    low = StreamReader(running.stub.StreamIsActive(ref(META)))
    high = StreamReader(running.stub.StreamIsActive(ref({**META, "activation": "10"})))
    assert await low.next() is False
    assert await high.next() is False
    fake_backend.values["jobs"] = 5
    assert await low.next() is True
    assert await high.nothing_for(QUIET)
    fake_backend.values["jobs"] = 11
    assert await high.next() is True
    assert len(running.app.hub) == 1  # one watcher for both
    low.cancel()
    high.cancel()


async def test_many_streams_share_one_watcher_which_leaves_with_the_last(
    serve, fake_backend
) -> None:
    running = await serve()
    streams = [
        StreamReader(running.stub.StreamIsActive(ref(META, name=f"so-{i}"))) for i in range(20)
    ]
    for stream in streams:
        assert await stream.next() is False
    assert len(running.app.hub) == 1
    reads_before = fake_backend.reads["jobs"]
    await asyncio.sleep(0.2)  # ~10 watch intervals
    assert fake_backend.reads["jobs"] - reads_before <= 15  # per interval, not per stream
    for stream in streams:
        stream.cancel()
    await _until(lambda: len(running.app.hub) == 0)
    assert running.sample("keda_queue_scaler_watchers") == 0


async def test_stream_survives_an_outage_and_reports_the_next_activation(
    serve, fake_backend
) -> None:
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    assert await stream.next() is False
    fake_backend.values["jobs"] = BackendUnavailable("broker down")
    assert await stream.nothing_for(QUIET)  # silent, never a false
    assert not stream.task.done()
    fake_backend.values["jobs"] = 4
    assert await stream.next() is True
    stream.cancel()


async def test_stream_opened_during_an_outage_sends_the_state_once_readable(
    serve, fake_backend
) -> None:
    fake_backend.values["jobs"] = BackendUnavailable("broker down")
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    assert await stream.nothing_for(QUIET)
    fake_backend.values["jobs"] = 0
    assert await stream.next() is False
    stream.cancel()


async def test_bad_metadata_ends_the_stream_with_invalid_argument(serve) -> None:
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref({"backend": "fake", "target": "x"})))
    with contextlib.suppress(grpc.aio.AioRpcError):
        await stream.status()
    assert await stream.call.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_shutdown_ends_open_streams_with_status_ok(serve, fake_backend) -> None:
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    spec_stream = running.stub.StreamMetricSpec(ref(META))
    assert await stream.next() is False
    await spec_stream.read()
    await running.app.stop()
    assert await stream.status() == grpc.StatusCode.OK
    assert await spec_stream.code() == grpc.StatusCode.OK
    assert all(client.closed for client in fake_backend.clients)
    assert running.sample("keda_queue_scaler_open_streams", {"method": "StreamIsActive"}) == 0


async def test_shutdown_ends_watchers_whose_reads_lose_the_cancellation(
    serve, fake_backend
) -> None:
    # found with an overloaded naive-mode server that never finished SIGTERM: a read that
    # swallows the cancel must not keep its watcher polling for ever
    running = await serve(naive=True)
    fake_backend.delay, fake_backend.swallow_cancel = 0.3, True
    streams = [
        StreamReader(running.stub.StreamIsActive(ref(META, name=f"so-{i}"))) for i in range(5)
    ]
    for stream in streams:
        assert await stream.next() is False
    await asyncio.wait_for(running.app.stop(), 5)
    for stream in streams:
        assert await stream.status() == grpc.StatusCode.OK


async def test_push_events_are_counted(serve, fake_backend) -> None:
    running = await serve()
    stream = StreamReader(running.stub.StreamIsActive(ref(META)))
    assert await stream.next() is False
    fake_backend.values["jobs"] = 1
    assert await stream.next() is True
    labels = {"backend": "fake"}
    assert running.sample("keda_queue_scaler_push_events_total", {**labels, "kind": "initial"}) == 1
    assert (
        running.sample("keda_queue_scaler_push_events_total", {**labels, "kind": "activation"}) == 1
    )
    stream.cancel()


async def test_shutdown_lets_in_flight_rpcs_finish(serve, fake_backend) -> None:
    fake_backend.values["jobs"] = 6
    fake_backend.delay = 0.3
    running = await serve(grace_period=2.0)
    call = asyncio.ensure_future(running.stub.IsActive(ref(META)))
    await asyncio.sleep(0.05)  # the read is in flight
    await running.app.stop()
    assert (await call).result is True


async def test_naive_mode_gives_each_stream_its_own_watcher(serve, fake_backend) -> None:
    running = await serve(naive=True)
    streams = [
        StreamReader(running.stub.StreamIsActive(ref(META, name=f"so-{i}"))) for i in range(3)
    ]
    for stream in streams:
        assert await stream.next() is False
    assert len(running.app.hub) == 3
    for stream in streams:
        stream.cancel()


async def test_watch_budget_bounds_broker_requests_per_connection(serve, fake_backend) -> None:
    # the fake reads one request per resource: 20 resources at 100 requests/s -> 5 batches/s
    running = await serve(watch_interval=0.01, watch_max_requests=100.0)
    streams = [
        StreamReader(running.stub.StreamIsActive(ref({**META, "name": f"q{i}"}))) for i in range(20)
    ]
    for stream in streams:
        assert await stream.next() is False
    before = sum(fake_backend.reads.values())
    await asyncio.sleep(1.0)
    requests = sum(fake_backend.reads.values()) - before
    assert requests <= 100 + 20, requests  # the budget, plus one batch of slack
    assert running.app.hub.batches == 1
    for stream in streams:
        stream.cancel()


async def test_streams_beyond_the_cap_are_resource_exhausted(serve) -> None:
    running = await serve(max_streams=2)
    first = StreamReader(running.stub.StreamIsActive(ref(META)))
    second = StreamReader(running.stub.StreamIsActive(ref(META, name="two")))
    assert await first.next() is False
    assert await second.next() is False
    third = StreamReader(running.stub.StreamIsActive(ref(META, name="three")))
    with contextlib.suppress(grpc.aio.AioRpcError):
        await third.status()
    assert await third.call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-streams" in (await third.call.details())
    first.cancel()
    await _until(lambda: running.app.hub.subscribers(running.app.engine.parse(META)) == 1)
    await asyncio.sleep(0.05)
    fourth = StreamReader(running.stub.StreamIsActive(ref(META, name="four")))
    assert await fourth.next() is False
    second.cancel()
    fourth.cancel()


async def test_task_and_thread_gauges_follow_the_process(serve) -> None:
    running = await serve()
    idle = running.sample("keda_queue_scaler_asyncio_tasks")
    assert idle == len(asyncio.all_tasks())
    streams = [
        StreamReader(running.stub.StreamIsActive(ref(META, name=f"so-{i}"))) for i in range(5)
    ]
    for stream in streams:
        assert await stream.next() is False
    assert running.sample("keda_queue_scaler_asyncio_tasks") == len(asyncio.all_tasks()) > idle
    assert running.sample("keda_queue_scaler_threads") == len(os.listdir("/proc/self/task"))
    for stream in streams:
        stream.cancel()
    await _until(lambda: running.sample("keda_queue_scaler_asyncio_tasks") <= idle)
