"""Each broker stopped (SIGTERM), killed (SIGKILL) and paused (SIGSTOP) while KEDA's load runs.

The scaler is its own process with its default timing (backend timeout 2 s, cache TTL 1 s,
default watch intervals). ``bench.harness.keda_pattern`` offers KEDA's rounds (GetMetricSpec,
GetMetrics, IsActive) over ScaledObjects on all three brokers, StreamIsActive streams are open on
each broker, and a probe asks for health ten times a second. One broker is faulted for a few
seconds and brought back. Checked, from every call the load made:

* the scaler process never exits, and health answers SERVING throughout;
* every call answers within the backend timeout; an error is UNAVAILABLE or DEADLINE_EXCEEDED;
  an answer is the broker's own value, never a 0 or ``false`` that it is not;
* once the cache TTL has passed, every GetMetrics and IsActive on the faulted broker is an error
  until it returns, while the ScaledObjects on the other brokers keep their correct answers;
* from two refresh intervals (cache TTL) after the broker serves its own view again, every
  answer is correct; the recovery time is printed;
* the streams stay open, say nothing during the fault, and deliver the next activation;
* afterwards the broker connections (counted from both ends by the kernel), the scaler's
  asyncio tasks and its threads are back to their baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.harness.keda_pattern import KedaPattern, Outcome
from bench.harness.ports import free_port
from bench.harness.prometheus import parse_prometheus, series_sum
from bench.harness.scaler_process import scaler_process, wait_serving
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from tests.conftest import ref
from tests.integration import sockets
from tests.integration.conftest import broker_pid
from tests.integration.kafka_fixtures import (
    commit,
    committed,
    end_offsets,
    kafka_metadata,
    produce,
)
from tests.streams import StreamReader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TIMEOUT = 2.0  # SCALER_BACKEND_TIMEOUT (the default)
TTL = 1.0  # SCALER_CACHE_TTL (the default): a GetMetrics answer is at most this old
SLACK = 0.5  # scheduling allowance on top of the timeout (2 cores: brokers, scaler, load)
RATE = 150.0  # RPCs per second offered, the load of 50 ScaledObjects polled every second
OUTAGE = 4.0  # seconds a broker stays down: > TTL + TIMEOUT, so every object sees it
BACKLOG = 3  # messages waiting on every busy resource
OBJECTS = 8  # busy ScaledObjects per broker (plus one idle one)


@dataclass
class Broker:
    """One broker under test: its ScaledObjects' metadata and how to see, fault and restore it."""

    name: str
    port: int
    busy: dict[str, str]  # metadata of a resource holding BACKLOG messages
    idle: dict[str, str]  # metadata of an empty resource
    pid: Callable[[], int]
    backlog: Callable[[], Awaitable[int]]  # the broker's own count of the busy resource
    activate: Callable[[], Awaitable[None]]  # put work on the idle resource
    restart: Callable[[], Awaitable[None]]  # start it again after SIGTERM or SIGKILL
    stopped: Callable[[], None] = lambda: None  # tell its fixture it may need restarting


@dataclass
class Snapshot:
    """Connections to each broker counted from both ends, the scaler's tasks and threads."""

    broker_side: dict[str, int]
    scaler_side: dict[str, int]
    tasks: int
    threads: int
    #: thread names (the kernel's comm), so a failure says which thread stayed
    thread_names: dict[str, int] = field(default_factory=dict, compare=False)

    def back_to(self, baseline: Snapshot) -> bool:
        # the baseline may have caught a read in flight (a task); fewer is no leak
        return (
            self.broker_side == baseline.broker_side
            and self.scaler_side == baseline.scaler_side
            and self.tasks <= baseline.tasks
            and self.threads <= baseline.threads
        )


@dataclass
class Record:
    """What the load and the health probe saw."""

    outcomes: list[Outcome] = field(default_factory=list)
    health_failures: list[str] = field(default_factory=list)


# --- the three brokers ---------------------------------------------------------------------------


@pytest.fixture
async def redis_under_test(durable_redis) -> Broker:
    client = aioredis.Redis(host="127.0.0.1", port=durable_redis.port)
    await client.rpush("busy", *range(BACKLOG))
    await client.aclose()

    async def backlog() -> int:
        fresh = aioredis.Redis(host="127.0.0.1", port=durable_redis.port, socket_timeout=1)
        try:
            return int(await fresh.llen("busy"))
        finally:
            await fresh.aclose()

    async def activate() -> None:
        fresh = aioredis.Redis(host="127.0.0.1", port=durable_redis.port)
        try:
            await fresh.rpush("idle", "job")
        finally:
            await fresh.aclose()

    return Broker(
        "redis",
        durable_redis.port,
        durable_redis.metadata("busy"),
        durable_redis.metadata("idle"),
        lambda: durable_redis.pid,
        backlog,
        activate,
        durable_redis.start,
    )


@pytest.fixture
async def kafka_under_test(
    kafka_bootstrap, kafka_topic, kafka_group, kafka_broker_control
) -> Broker:
    busy_topic, idle_topic = kafka_topic(), kafka_topic()
    busy_group, idle_group = kafka_group(), kafka_group()
    await asyncio.to_thread(produce, kafka_bootstrap, busy_topic, 0, BACKLOG + 1)
    await asyncio.to_thread(commit, kafka_bootstrap, busy_group, {(busy_topic, 0): 1})
    await asyncio.to_thread(commit, kafka_bootstrap, idle_group, {(idle_topic, 0): 0})

    def lag() -> int:
        end = end_offsets(kafka_bootstrap, busy_topic)[(busy_topic, 0)]
        return end - committed(kafka_bootstrap, busy_group)[(busy_topic, 0)]

    return Broker(
        "kafka",
        kafka_broker_control.port,
        kafka_metadata(kafka_bootstrap, busy_group, busy_topic),
        kafka_metadata(kafka_bootstrap, idle_group, idle_topic),
        lambda: broker_pid("kafka"),
        lambda: asyncio.to_thread(lag),
        lambda: asyncio.to_thread(produce, kafka_bootstrap, idle_topic, 0, 1),
        kafka_broker_control.start,
    )


@pytest.fixture
async def rabbitmq_under_test(
    amqp_url, rabbit_queue, rabbitmq_metadata, amqp_peer, rabbitmq_broker_control
) -> Broker:
    busy, idle = await rabbit_queue(), await rabbit_queue()
    await amqp_peer.publish(busy, BACKLOG)

    # fresh connections: the broker may have restarted since the last one
    async def backlog() -> int:
        connection = await asyncio.wait_for(aio_pika.connect(amqp_url), 2)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(busy.name, passive=True)
            count = queue.declaration_result.message_count
            assert count is not None
            return count
        finally:
            await connection.close()

    async def activate() -> None:
        connection = await asyncio.wait_for(aio_pika.connect(amqp_url), 2)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.default_exchange.publish(aio_pika.Message(b"job"), idle.name)
        finally:
            await connection.close()

    def stopped() -> None:
        rabbitmq_broker_control.stopped = True  # its teardown then starts the node again

    return Broker(
        "rabbitmq",
        int(amqp_url.rsplit(":", 1)[1].split("/")[0]),
        rabbitmq_metadata(busy, "amqp"),
        rabbitmq_metadata(idle, "amqp"),
        lambda: broker_pid("rabbitmq"),
        backlog,
        activate,
        rabbitmq_broker_control.start,
        stopped,
    )


# --- measuring the scaler ------------------------------------------------------------------------


def _asyncio_tasks(metrics_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        samples = parse_prometheus(reply.read().decode())
    return int(series_sum(samples, "keda_queue_scaler_asyncio_tasks"))


async def _snapshot(scaler_pid: int, metrics_port: int, brokers: list[Broker]) -> Snapshot:
    # threads first: the metrics server answers each scrape on a thread of its own, which may
    # still be closing the connection when the scrape returns
    threads = len(os.listdir(f"/proc/{scaler_pid}/task"))
    names = _thread_names(scaler_pid)
    tasks = await asyncio.to_thread(_asyncio_tasks, metrics_port)
    return Snapshot(
        {b.name: len(sockets.between(b.pid(), scaler_pid)) for b in brokers},
        {b.name: len(sockets.to_port(scaler_pid, b.port)) for b in brokers},
        tasks,
        threads,
        names,
    )


def _thread_names(pid: int) -> dict[str, int]:
    names: Counter[str] = Counter()
    for task in os.listdir(f"/proc/{pid}/task"):
        with (
            contextlib.suppress(OSError),  # a thread may end while it is listed
            open(f"/proc/{pid}/task/{task}/comm") as comm,
        ):
            names[comm.read().strip()] += 1
    return dict(names)


async def _back_to(
    baseline: Snapshot, measure: Callable[[], Awaitable[Snapshot]], seconds: float
) -> Snapshot:
    """Measure until back to ``baseline`` (idle connections take a few seconds to close)."""
    deadline = time.monotonic() + seconds
    while True:
        now = await measure()
        if now.back_to(baseline) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


async def _probe_health(channel: grpc.aio.Channel, record: Record, stop: asyncio.Event) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    while not stop.is_set():
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                record.health_failures.append(f"status {reply.status}")
        except grpc.aio.AioRpcError as err:
            record.health_failures.append(f"{err.code().name}: {err.details()}")
        await asyncio.sleep(0.1)


# --- the faults ----------------------------------------------------------------------------------


@dataclass
class Timeline:
    """When the broker stopped answering, when it was restarted (or resumed), and when it
    served its own view of the data again."""

    down: float
    restarting: float
    back: float


async def _fault(broker: Broker, how: signal.Signals) -> Timeline:
    """Apply the fault, hold it for OUTAGE seconds and restore the broker."""
    pid = broker.pid()
    if how == signal.SIGSTOP:
        os.kill(pid, signal.SIGSTOP)
        down = time.monotonic()
        try:
            await asyncio.sleep(OUTAGE)
        finally:
            os.kill(pid, signal.SIGCONT)
            restarting = time.monotonic()
    else:
        broker.stopped()
        os.kill(pid, how)
        # SIGTERM: the broker may keep answering while it shuts down; it is down once gone
        while _state(pid) != "Z":  # noqa: ASYNC110 - nothing to wait on but /proc
            await asyncio.sleep(0.05)
        down = time.monotonic()
        await asyncio.sleep(OUTAGE)
        restarting = time.monotonic()
        await broker.restart()
    deadline = time.monotonic() + 60
    while True:
        try:
            if await broker.backlog() == BACKLOG:
                return Timeline(down, restarting, time.monotonic())
        except Exception:  # noqa: BLE001, S110 - still starting: any client error means not yet
            pass
        assert time.monotonic() < deadline, f"{broker.name} did not serve its data again"
        await asyncio.sleep(0.1)


def _state(pid: int) -> str:
    """The process's state letter; "Z" also for a process that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how", [signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP], ids=lambda s: s.name
)
@pytest.mark.parametrize("name", ["redis", "kafka", "rabbitmq"])
async def test_broker_fault_under_keda_load(
    tmp_path: Path,
    redis_under_test: Broker,
    kafka_under_test: Broker,
    rabbitmq_under_test: Broker,
    name: str,
    how: signal.Signals,
) -> None:
    brokers = [redis_under_test, kafka_under_test, rabbitmq_under_test]
    faulted = next(b for b in brokers if b.name == name)
    objects, expected = [], {}
    for broker in brokers:
        for i in range(OBJECTS):
            objects.append(ref(broker.busy, name=f"{broker.name}-busy-{i}"))
            expected[f"{broker.name}-busy-{i}"] = BACKLOG
        objects.append(ref(broker.idle, name=f"{broker.name}-idle"))
        expected[f"{broker.name}-idle"] = 0
    port, metrics_port = free_port(), free_port()
    record = Record()
    async with (
        scaler_process(
            tmp_path / "scaler.log",
            port,
            metrics_port,
            SCALER_BACKEND_TIMEOUT=str(TIMEOUT),
            SCALER_CACHE_TTL=str(TTL),
        ) as process,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        await wait_serving(channel)
        stub = pb_grpc.ExternalScalerStub(channel)
        busy_streams = [
            StreamReader(stub.StreamIsActive(ref(b.busy, name=f"{b.name}-busy-{i}")))
            for b in brokers
            for i in range(2)
        ]
        idle_streams = {
            b.name: StreamReader(stub.StreamIsActive(ref(b.idle, name=f"{b.name}-idle")))
            for b in brokers
        }
        for stream in busy_streams:
            assert await stream.next(timeout=10) is True
        for stream in idle_streams.values():
            assert await stream.next(timeout=10) is False
        stop_probe = asyncio.Event()
        probe = asyncio.create_task(_probe_health(channel, record, stop_probe))
        load = KedaPattern(stub, objects, RATE, record.outcomes.append, deadline=TIMEOUT + 3)
        load.start()
        try:
            baseline, after, timeline, recovery, activated = await _scenario(
                process.pid, metrics_port, stub, brokers, faulted, how, load, expected
            )
            for broker_name, stream in idle_streams.items():
                assert await stream.next(timeout=10) is True, f"{broker_name}: no activation"
            for stream in busy_streams:
                assert stream.messages.empty(), "a busy stream said more than its first true"
                assert not stream.task.done(), "a stream ended"
            assert process.returncode is None, "the scaler exited"
        finally:
            await load.aclose()
            stop_probe.set()
            await probe
            for stream in [*busy_streams, *idle_streams.values()]:
                stream.cancel()

    failed = [o for o in record.outcomes if o.code != "OK"]
    last_error = max((o.started + o.seconds for o in failed), default=timeline.down)
    print(  # noqa: T201 - the figures docs/reliability.md reports (pytest -s shows them)
        f"\n{name} {how.name}: out {timeline.restarting - timeline.down:.1f} s; serving its data "
        f"{timeline.back - timeline.restarting:.1f} s after restart/resume; last scaler error "
        f"{last_error - timeline.restarting:+.2f} s from it, first correct value "
        f"{recovery:.2f} s after the broker's; {len(record.outcomes)} RPCs, errors "
        f"{dict(Counter(o.code for o in failed))}, slowest "
        f"{max(o.seconds for o in record.outcomes) * 1000:.0f} ms"
    )
    _check_outcomes(record.outcomes, name, expected, timeline, activated)
    assert record.health_failures == []
    assert recovery <= 2 * TTL
    assert after.back_to(baseline), f"after the fault {after}, before {baseline}"


async def _scenario(
    scaler_pid: int,
    metrics_port: int,
    stub: pb_grpc.ExternalScalerAsyncStub,
    brokers: list[Broker],
    faulted: Broker,
    how: signal.Signals,
    load: KedaPattern,
    expected: dict[str, int],
) -> tuple[Snapshot, Snapshot, Timeline, float, float]:
    """Warm up, take the baseline, fault the broker, measure recovery, put work on the idle
    resources, and measure again once the load has stopped."""

    def measure() -> Awaitable[Snapshot]:
        return _snapshot(scaler_pid, metrics_port, brokers)

    await asyncio.sleep(3)  # warm-up: every client connected, pools at working size
    await load.pause()
    await asyncio.sleep(1)
    baseline = await measure()
    assert all(baseline.broker_side.values()), baseline  # the count sees the connections
    load.resume()
    await asyncio.sleep(1)
    timeline = await _fault(faulted, how)
    recovery = await _recovery(stub, faulted, expected, timeline.back)
    await asyncio.sleep(2 * TTL + 1)  # the load runs on past the recovery bound
    activated = time.monotonic()
    for broker in brokers:
        await broker.activate()
    await asyncio.sleep(1)  # the streams' activations, under load
    await load.pause()
    after = await _back_to(baseline, measure, 15)
    return baseline, after, timeline, recovery, activated


async def _recovery(
    stub: pb_grpc.ExternalScalerAsyncStub, broker: Broker, expected: dict[str, int], back: float
) -> float:
    """Seconds from ``back`` until GetMetrics answers the broker's values for its objects."""
    names = [f"{broker.name}-busy-0", f"{broker.name}-idle"]
    refs = [ref(broker.busy, name=names[0]), ref(broker.idle, name=names[1])]
    want = [float(expected[n]) for n in names]
    while True:
        try:
            values = [
                (await stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=r), timeout=5))
                .metricValues[0]
                .metricValueFloat
                for r in refs
            ]
            if values == want:
                return time.monotonic() - back
        except grpc.aio.AioRpcError:
            pass
        assert time.monotonic() - back < 30, f"{broker.name}: values never came back"
        await asyncio.sleep(0.05)


def _check_outcomes(
    outcomes: list[Outcome],
    faulted: str,
    expected: dict[str, int],
    timeline: Timeline,
    activated: float,
) -> None:
    """Every call of the load against the rules in the module docstring."""
    assert outcomes, "the load made no calls"
    failed_in_outage: set[str] = set()
    for o in outcomes:
        ends = o.started + o.seconds
        mine = o.name.startswith(f"{faulted}-")
        assert o.seconds <= TIMEOUT + SLACK, f"slower than the backend timeout: {o}"
        if o.code != "OK":
            assert mine, f"a call to a healthy broker failed: {o}"
            assert o.method != "GetMetricSpec", f"a call that needs no broker failed: {o}"
            assert o.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), o
            assert o.started < timeline.back + 2 * TTL, f"failed after recovery: {o}"
            if timeline.down <= o.started and ends <= timeline.restarting:
                failed_in_outage.add(o.name)
        elif o.method != "GetMetricSpec":
            if mine and timeline.down + TTL <= o.started and ends <= timeline.restarting:
                raise AssertionError(f"answered while {faulted} was down: {o}")
            if o.name.endswith("-idle") and ends >= activated:
                continue  # work has arrived on the idle resource
            want = expected[o.name]
            assert o.value == (want if o.method == "GetMetrics" else want > 0), o
    faulted_objects = {n for n in expected if n.startswith(f"{faulted}-")}
    assert failed_in_outage == faulted_objects, "some ScaledObjects never saw the fault"
