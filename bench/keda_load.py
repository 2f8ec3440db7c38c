"""KEDA-shaped load on the scaler, normal mode against naive mode, with the broker's own counts.

    make brokers && .venv/bin/python -m bench.keda_load            # full run, about 5 minutes
    .venv/bin/python -m bench.keda_load --quick                    # smoke run, under a minute
    .venv/bin/python -m bench.keda_load --profile                  # + where the handler's time goes
    .venv/bin/python -m bench.keda_load --scenarios poll,activation --modes normal

The benchmark starts everything it measures itself: the scaler (``python -m scaler serve``, a
fresh process per scenario and mode, pinned to core 0 with ``taskset -c 0``; naive mode adds
``--naive true``: no coalescing, one watcher per stream, so every RPC reads the broker as KEDA's
built-in scalers do), a no-op grpc.aio server (``bench.noop_server``, Python's own ceiling, pinned
the same way), the load generators on core 1 (ghz, ``scripts/ghz.sh`` builds it once; a separate
Python process, ``bench.stream_holder``, holding the StreamIsActive streams) and a private
``redis-server`` on a free port (pinned to core 1, so that its command statistics count only the
scaler and the benchmark; ``--redis-url`` uses another). Kafka and RabbitMQ are the test brokers
of ``make brokers`` (``SCALER_TEST_*`` variables, defaults 127.0.0.1:19092 and 15673/15674).
Queues, topics and groups are named ``kqs-bench-<uuid>-...`` and deleted afterwards.

Scenarios (``--scenarios``, default all):

``poll``
    N ScaledObjects (default 1,000) on M Redis lists (10). One KEDA poll round: GetMetricSpec,
    then GetMetrics, then IsActive for every ScaledObject (three ghz phases, so each object's
    calls come in KEDA's order), then one HPA round (same, metric name lower-cased, 3 s
    deadline). Broker requests per round from Redis' command statistics. Then a sustained run:
    S streams open (default 100) and the whole pattern (poll + HPA, six ghz processes side by
    side) at a compressed interval (every object polled every 4 s instead of 30 s).
``throughput``
    N = 10,000 ScaledObjects on M = 100 lists: GetMetrics as fast as the server answers at a fixed
    concurrency (16) for 15 s, against the no-op server under the same ghz load in the same run.
``streams``
    10,000 known ScaledObjects (GetMetricSpec and GetMetrics once each) and 1,000 open streams
    on 100 lists: the broker requests per second that watching costs (per connection identity
    and per TCP connection) over 10 s, the server's CPU, and its RSS.
``activation``
    Per backend (redis, rabbitmq-amqp, rabbitmq-http, kafka): with a stream open on an empty
    queue, enqueue one message and time until the stream's ``true`` arrives; drain, poll
    IsActive until ``false``, wait a random fraction of the watch interval, repeat; at least
    200 activations per backend over a few queues in parallel. Normal mode only unless
    ``--activation-modes normal,naive``.

Broker requests are counted by the broker where it can: Redis ``INFO commandstats`` of the
private instance (the scaler's top-level commands, not the ``TYPE``/``LLEN`` its scripts run),
RabbitMQ's ``rabbitmq_channels_opened_total`` for AMQP (Prometheus plugin, whole node); the
management API and Kafka (JMX only) count nothing, so those use the scaler's own read counter
(times 4 requests per batched Kafka read). ``--profile`` adds ``bench.handler_profile`` (the
GetMetrics handler alone, timed and under cProfile) and a py-spy profile when py-spy is found.

Every figure is checked against the issue's targets. Output: tables on stdout and
``bench/results/keda_load.json`` (``--output``). A scenario that fails prints why and the run
carries on; the exit status is then 1 (``--strict`` also fails on a missed target).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import httpx
import redis.asyncio as aioredis

from bench.ghzrun import ROOT, GhzLoad, find_ghz, run_ghz, write_data
from bench.loadstats import (
    GhzReport,
    Samples,
    command_calls,
    core_busy,
    cpu_ticks,
    latency_summary,
    merge_reports,
    parse_prometheus,
    ratio,
    redis_requests,
    series_sum,
)
from scaler.app import watch_interval
from scaler.backends import build_backends
from scaler.backends.base import metric_name
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings

RESULTS = ROOT / "bench" / "results"


def _watch_interval(backend: str) -> float:
    """The watch interval the scaler uses for ``backend`` with its default settings."""
    return watch_interval(DEFAULTS, build_backends(DEFAULTS.backend_timeout)[backend])


SERVER_CPU = 0
LOAD_CPU = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
SCALER_CLIENT_NAME = "keda-queue-scaler"
NAMESPACE = "bench"
SCENARIOS = ("poll", "throughput", "streams", "activation")
BACKENDS = ("redis", "rabbitmq-amqp", "rabbitmq-http", "kafka")
DEFAULTS = Settings()
#: requests of one batched Kafka read (scaler.backends.kafka: Metadata, OffsetFetch, Metadata
#: and ListOffsets for one leader)
KAFKA_REQUESTS_PER_READ = 4


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


# --- sizes ------------------------------------------------------------------------------------


@dataclass
class Sizes:
    """Every knob of the workload; ``--quick`` shrinks them to a smoke run."""

    poll_objects: int = 1000
    poll_queues: int = 10
    poll_concurrency: int = 50
    poll_streams: int = 100
    poll_interval: float = 4.0
    sustained_seconds: float = 10.0
    baseline_seconds: float = 3.0
    tp_objects: int = 10_000
    tp_queues: int = 100
    tp_concurrency: int = 16
    tp_seconds: float = 15.0
    tp_streams: int = 0
    known_objects: int = 10_000
    streams: int = 1000
    stream_queues: int = 100
    stream_window: float = 10.0
    stream_settle: float = 2.0
    activations: int = 200
    lanes: int = 4
    amqp_lanes: int = 2
    http_lanes: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            poll_objects=200,
            poll_streams=20,
            poll_interval=2.0,
            sustained_seconds=2.0,
            baseline_seconds=1.0,
            tp_objects=1000,
            tp_queues=10,
            tp_seconds=2.0,
            known_objects=1000,
            streams=100,
            stream_queues=10,
            stream_window=2.0,
            stream_settle=1.0,
            activations=10,
            lanes=2,
            amqp_lanes=1,
            http_lanes=5,
        )


# --- ScaledObjects ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaledObject:
    """What KEDA sends for one trigger of one ScaledObject."""

    name: str
    metadata: dict[str, str]
    metric: str

    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "namespace": NAMESPACE, "scalerMetadata": self.metadata}

    def ref_pb(self) -> pb.ScaledObjectRef:
        return pb.ScaledObjectRef(name=self.name, namespace=NAMESPACE, scalerMetadata=self.metadata)

    def metrics_request(self, hpa: bool) -> dict[str, Any]:
        # KEDA's poll loop sends the name GetMetricSpec returned; the HPA path lower-cases it
        return {
            "scaledObjectRef": self.ref(),
            "metricName": self.metric.lower() if hpa else self.metric,
        }


def redis_objects(count: int, queues: Sequence[str], address: str, tag: str) -> list[ScaledObject]:
    """``count`` ScaledObjects round-robin over ``queues``, each with distinct metadata.

    Object ``i`` watches ``queues[i % M]`` with ``listLength = 1 + i // M``, so every object is
    a distinct metadata map (the scaler memoises one parse per map), as different thresholds
    on shared queues are in a real cluster.
    """
    objects = []
    for i in range(count):
        queue = queues[i % len(queues)]
        objects.append(
            ScaledObject(
                name=f"{tag}-so-{i}",
                metadata={
                    "scalerAddress": "keda-queue-scaler.keda.svc.cluster.local:9090",
                    "backend": "redis",
                    "address": address,
                    "listName": queue,
                    "listLength": str(1 + i // len(queues)),
                    "activationListLength": "0",
                },
                metric=metric_name("redis", queue),
            )
        )
    return objects


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


class Proc:
    """A child process of the benchmark with its output in a log file; stopped by its pid."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @classmethod
    async def start(
        cls, name: str, argv: list[str], log: Path, *, stdin: bool = False, stdout: bool = False
    ) -> Proc:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as handle:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout else handle,
                stderr=handle,
            )
        return cls(name, proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def read_text(path: str) -> str:
    with open(path) as handle:
        return handle.read()


class Server:
    """The scaler (``kind="scaler"``) or the no-op ceiling (``kind="noop"``), pinned to core 0."""

    def __init__(self, kind: str, mode: str, logs: Path, cpu: int | None) -> None:
        self.kind = kind
        self.mode = mode
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.log = logs / f"{kind}-{mode}-{self.grpc_port}.log"
        self.cpu = cpu
        self.proc: Proc | None = None
        self.channel: grpc.aio.Channel | None = None
        self.http = httpx.AsyncClient(timeout=10.0)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def argv(self) -> list[str]:
        if self.kind == "noop":
            return [sys.executable, "-m", "bench.noop_server", "--grpc-port", str(self.grpc_port)]
        argv = [
            sys.executable,
            "-m",
            "scaler",
            "serve",
            "--grpc-port",
            str(self.grpc_port),
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
            "--log-level",
            "WARNING",
            "--grace-period",
            "1",
        ]
        if self.mode == "naive":
            argv += ["--naive", "true"]
        return argv

    async def start(self) -> None:
        self.proc = await Proc.start(self.kind, pinned(self.argv(), self.cpu), self.log)
        self.channel = grpc.aio.insecure_channel(self.target)
        deadline = time.monotonic() + 30
        while True:
            if not self.proc.alive:
                raise RuntimeError(
                    f"{self.kind} ({self.mode}) exited with {self.proc.proc.returncode} at start:"
                    f"\n{self.proc.tail()}"
                )
            try:
                await asyncio.wait_for(self.channel.channel_ready(), 0.5)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.kind} ({self.mode}) not serving after 30 s:\n{self.proc.tail()}"
                    ) from None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def stub(self) -> Any:
        assert self.channel is not None
        return pb_grpc.ExternalScalerStub(self.channel)

    def check_alive(self) -> None:
        if self.proc is not None and not self.proc.alive:
            raise RuntimeError(
                f"{self.kind} ({self.mode}) died with status {self.proc.proc.returncode}:\n"
                f"{self.proc.tail()}"
            )

    def cpu_ticks(self) -> int:
        return cpu_ticks(read_text(f"/proc/{self.pid}/stat"))

    def memory(self) -> dict[str, float]:
        status = proc_status(self.pid)
        return {
            "rss_mb": round(status.get("VmRSS", 0) / 1024, 1),
            "hwm_mb": round(status.get("VmHWM", 0) / 1024, 1),
        }

    async def metrics(self) -> Samples | None:
        if self.kind != "scaler":
            return None
        response = await self.http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        response.raise_for_status()
        return parse_prometheus(response.text)

    def tail(self) -> str:
        return self.proc.tail() if self.proc is not None else ""

    async def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 15 s, 5 s in naive mode); the exit status."""
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        await self.http.aclose()
        if self.proc is None:
            return None
        return await self.proc.stop(5.0 if self.mode == "naive" else 15.0)


class StreamHolder:
    """``bench.stream_holder`` in its own process on the load core, holding S streams."""

    def __init__(self, proc: Proc, initial: int, streams: int, seconds: float) -> None:
        self.proc = proc
        self.initial = initial
        self.streams = streams
        self.ready_s = seconds

    @property
    def complete(self) -> bool:
        return self.initial == self.streams

    def readiness(self) -> dict[str, Any]:
        return {"streams_with_initial_state": self.initial, "open_s": self.ready_s}

    @classmethod
    async def open(
        cls,
        target: str,
        objects: Sequence[ScaledObject],
        workdir: Path,
        cpu: int | None,
        ready_within: float = 60.0,
        allow_partial: bool = False,
    ) -> StreamHolder:
        """Start the holder and wait until every stream has its initial state.

        :param allow_partial: accept streams left silent after ``ready_within`` (naive mode:
            a read that keeps failing leaves its stream silent); otherwise that is an error
        """
        refs = workdir / f"streams-{uuid.uuid4().hex[:6]}.json"
        refs.write_text(json.dumps([o.ref() for o in objects]))
        argv = [
            sys.executable,
            "-m",
            "bench.stream_holder",
            "--target",
            target,
            "--refs",
            str(refs),
            "--timeout",
            f"{ready_within:g}",
        ]
        proc = await Proc.start(
            "stream_holder",
            pinned(argv, cpu),
            workdir / f"holder-{refs.stem}.log",
            stdin=True,
            stdout=True,
        )
        assert proc.proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.proc.stdout.readline(), ready_within + 15)
        except TimeoutError:
            await proc.stop()
            raise RuntimeError(f"stream holder silent for {ready_within + 15:g}s") from None
        text = line.decode().strip()
        word, *fields = text.split(" ", 4)
        if word not in ("READY", "PARTIAL") or len(fields) < 3:
            await proc.stop(5)
            raise RuntimeError(f"stream holder: {text or 'exited'}\n{proc.tail()}")
        holder = cls(proc, int(fields[0]), int(fields[1]), float(fields[2]))
        if word == "PARTIAL" and not allow_partial:
            await holder.close()
            raise RuntimeError(
                f"only {holder.initial} of {holder.streams} streams received their initial state "
                f"within {ready_within:g}s; ended early: {fields[3] if len(fields) > 3 else '{}'}"
            )
        return holder

    async def close(self) -> dict[str, Any]:
        """Close the streams; the holder's own counts."""
        process = self.proc.proc
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        summary: dict[str, Any] = {}
        try:
            async with asyncio.timeout(20):
                async for raw in process.stdout:
                    line = raw.decode().strip()
                    if line.startswith("DONE "):
                        summary = json.loads(line[5:])
        except TimeoutError:
            pass
        await self.proc.stop(5)
        return summary


# --- brokers ----------------------------------------------------------------------------------


class RedisBroker:
    """The Redis the benchmark measures: a private ``redis-server`` unless a URL is given."""

    def __init__(self, url: str | None, workdir: Path, cpu: int | None) -> None:
        self.external_url = url
        self.workdir = workdir
        self.cpu = cpu
        self.proc: Proc | None = None
        self.port = 0
        self.client: aioredis.Redis | None = None
        self.version = ""

    @property
    def address(self) -> str:
        if self.external_url:
            url = httpx.URL(self.external_url)
            return f"{url.host}:{url.port or 6379}"
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        if self.external_url:
            self.client = aioredis.Redis.from_url(self.external_url)
        else:
            binary = shutil.which("redis-server")
            if binary is None:
                raise RuntimeError("redis-server is not installed (make brokers installs it)")
            self.port = free_port()
            data = self.workdir / "redis"
            data.mkdir(exist_ok=True)
            argv = [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
            ]
            self.proc = await Proc.start("redis", pinned(argv, self.cpu), data / "redis.log")
            self.client = aioredis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 15
        while True:
            try:
                await self.redis.ping()
                break
            except (OSError, aioredis.ConnectionError):
                if time.monotonic() > deadline or (self.proc is not None and not self.proc.alive):
                    tail = self.proc.tail() if self.proc else ""
                    raise RuntimeError(f"Redis at {self.address} does not answer\n{tail}") from None
                await asyncio.sleep(0.1)
        self.version = str((await self.redis.info("server")).get("redis_version", "?"))

    @property
    def redis(self) -> aioredis.Redis:
        assert self.client is not None
        return self.client

    async def calls(self) -> dict[str, int]:
        return command_calls(await self.redis.info("commandstats"))

    async def scaler_connections(self) -> int:
        clients = await self.redis.client_list()
        return sum(1 for c in clients if c.get("name") == SCALER_CLIENT_NAME)

    async def fill(self, queues: Sequence[str]) -> None:
        """Queue ``j`` gets ``j`` items (the first stays empty: inactive, missing key is 0)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for j, queue in enumerate(queues):
                pipe.delete(queue)
                if j:
                    pipe.rpush(queue, *(["job"] * j))
            await pipe.execute()

    async def drop(self, keys: Sequence[str]) -> None:
        if keys and self.client is not None:
            await self.redis.delete(*keys)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.proc is not None:
            await self.proc.stop()


async def rabbit_counters(url: str, http: httpx.AsyncClient) -> dict[str, float]:
    """Channel and connection totals from RabbitMQ's Prometheus endpoint (whole node)."""
    response = await http.get(url)
    response.raise_for_status()
    samples = parse_prometheus(response.text)
    return {
        "channels_opened": series_sum(samples, "rabbitmq_channels_opened_total"),
        "connections_opened": series_sum(samples, "rabbitmq_connections_opened_total"),
    }


# --- measurement windows ----------------------------------------------------------------------


@dataclass
class Snapshot:
    """Counters at one instant; two of them make a window."""

    at: float
    server_ticks: int
    core: tuple[int, int] | None
    children_cpu: float
    redis: dict[str, int] | None
    scaler: Samples | None
    extra: dict[str, float] = field(default_factory=dict)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def snapshot(
    server: Server,
    redis: RedisBroker | None,
    cpu: int | None,
    extra: dict[str, float] | None = None,
) -> Snapshot:
    server.check_alive()
    return Snapshot(
        at=time.perf_counter(),
        server_ticks=server.cpu_ticks(),
        core=core_busy(read_text("/proc/stat"), cpu) if cpu is not None else None,
        children_cpu=_children_cpu(),
        redis=await redis.calls() if redis is not None else None,
        scaler=await server.metrics(),
        extra=extra or {},
    )


def window(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """What happened between two snapshots: CPU shares, broker requests, scaler reads."""
    seconds = b.at - a.at
    server_cpu = (b.server_ticks - a.server_ticks) / CLK_TCK
    out: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "server_cpu_pct": round(100 * server_cpu / seconds, 1),
        # ghz, the stream holder and other children that ended in the window (the load side)
        "ended_children_cpu_s": round(b.children_cpu - a.children_cpu, 2),
    }
    if a.core is not None and b.core is not None:
        busy = b.core[0] - a.core[0]
        total = b.core[1] - a.core[1]
        if total > 0:
            core_pct = 100 * busy / total
            out["server_core_busy_pct"] = round(core_pct, 1)
            # anything else that ran on the server's core (other users of the machine)
            out["server_core_foreign_pct"] = round(max(core_pct - out["server_cpu_pct"], 0.0), 1)
    if a.redis is not None and b.redis is not None:
        counted = redis_requests(a.redis, b.redis)
        out["redis"] = {**counted, "per_s": round(counted["requests"] / seconds, 1)}
    if a.scaler is not None and b.scaler is not None:
        reads = {}
        for backend in ("redis", "rabbitmq", "kafka"):
            n = series_sum(
                b.scaler,
                "keda_queue_scaler_backend_request_duration_seconds_count",
                backend=backend,
            ) - series_sum(
                a.scaler,
                "keda_queue_scaler_backend_request_duration_seconds_count",
                backend=backend,
            )
            if n:
                reads[backend] = int(n)
        out["scaler_reads"] = reads
        read_ms = {}
        for backend in reads:
            seconds_sum = series_sum(
                b.scaler, "keda_queue_scaler_backend_request_duration_seconds_sum", backend=backend
            ) - series_sum(
                a.scaler, "keda_queue_scaler_backend_request_duration_seconds_sum", backend=backend
            )
            read_ms[backend] = round(1000 * seconds_sum / reads[backend], 2)
        out["scaler_read_mean_ms"] = read_ms
        coalescing = {}
        for result in ("hit", "miss", "shared"):
            coalescing[result] = int(
                series_sum(b.scaler, "keda_queue_scaler_coalescing_total", result=result)
                - series_sum(a.scaler, "keda_queue_scaler_coalescing_total", result=result)
            )
        out["coalescing"] = coalescing
        errors: dict[str, int] = {}
        for (name, labels), value in b.scaler.items():
            if name == "keda_queue_scaler_backend_errors_total":
                n = int(value - a.scaler.get((name, labels), 0.0))
                if n:
                    errors[",".join(f"{k}={v}" for k, v in sorted(labels))] = n
        out["scaler_backend_errors"] = errors
    for key, value in b.extra.items():
        if key in a.extra:
            out.setdefault("broker_counters", {})[key] = value - a.extra[key]
    return out


# --- activation lanes -------------------------------------------------------------------------


class Lane(Protocol):
    """One queue with one stream on it; enqueue makes it non-empty, drain empties it."""

    metadata: dict[str, str]

    async def enqueue(self) -> None: ...

    async def drain(self) -> None: ...


@dataclass
class RedisLane:
    redis: aioredis.Redis
    key: str
    metadata: dict[str, str]

    async def enqueue(self) -> None:
        await self.redis.lpush(self.key, "job")

    async def drain(self) -> None:
        await self.redis.delete(self.key)


@dataclass
class RabbitLane:
    channel: Any  # aio_pika channel
    queue: Any  # aio_pika queue
    metadata: dict[str, str]

    async def enqueue(self) -> None:
        import aio_pika

        await self.channel.default_exchange.publish(
            aio_pika.Message(b"job"), routing_key=self.queue.name
        )

    async def drain(self) -> None:
        await self.queue.purge()


@dataclass
class KafkaLane:
    producer: Any
    admin: Any
    topic: str
    group: str
    metadata: dict[str, str]
    end: int = 0

    async def enqueue(self) -> None:
        record = await asyncio.to_thread(lambda: self.producer.send(self.topic, b"job").get(10))
        self.end = int(record.offset) + 1

    async def drain(self) -> None:
        await asyncio.to_thread(self._commit, self.end)

    def _commit(self, offset: int) -> None:
        from kafka.structs import OffsetAndMetadata, TopicPartition

        self.admin.alter_group_offsets(
            self.group, {TopicPartition(self.topic, 0): OffsetAndMetadata(offset, "", -1)}
        )


@dataclass
class LaneSet:
    lanes: list[Lane]
    cleanup: Callable[[], Awaitable[None]]
    counters: Callable[[], Awaitable[dict[str, float]]] | None = None
    source: str = ""


@dataclass
class Urls:
    kafka: str
    amqp: str
    rabbit_http: str
    rabbit_prometheus: str


async def redis_lanes(redis: RedisBroker, count: int, tag: str) -> LaneSet:
    keys = [f"{tag}-act-{i}" for i in range(count)]
    await redis.drop(keys)
    lanes: list[Lane] = [
        RedisLane(
            redis.redis,
            key,
            {
                "backend": "redis",
                "address": redis.address,
                "listName": key,
                "listLength": "1",
                "activationListLength": "0",
            },
        )
        for key in keys
    ]

    async def cleanup() -> None:
        await redis.drop(keys)

    return LaneSet(lanes, cleanup, source="Redis INFO commandstats (scaler's top-level commands)")


async def rabbit_lanes(urls: Urls, count: int, tag: str, protocol: str) -> LaneSet:
    import aio_pika

    connection = await aio_pika.connect(urls.amqp)
    channel = await connection.channel()
    queues = [await channel.declare_queue(f"{tag}-{protocol}-{i}") for i in range(count)]
    host = urls.amqp if protocol == "amqp" else urls.rabbit_http
    lanes: list[Lane] = [
        RabbitLane(
            channel,
            queue,
            {
                "backend": "rabbitmq",
                "host": host,
                "queueName": queue.name,
                "mode": "QueueLength",
                "value": "1",
                "activationValue": "0",
            },
        )
        for queue in queues
    ]
    http = httpx.AsyncClient(timeout=10.0)

    async def cleanup() -> None:
        try:
            for queue in queues:
                await queue.delete(if_unused=False, if_empty=False)
        finally:
            await connection.close()
            await http.aclose()

    async def counters() -> dict[str, float]:
        return await rabbit_counters(urls.rabbit_prometheus, http)

    source = (
        "RabbitMQ Prometheus rabbitmq_channels_opened_total (whole node) and the scaler's reads"
        if protocol == "amqp"
        else "the scaler's own read counter (RabbitMQ does not count management API requests)"
    )
    return LaneSet(lanes, cleanup, counters if protocol == "amqp" else None, source)


async def kafka_lanes(urls: Urls, count: int, tag: str) -> LaneSet:
    from kafka import KafkaAdminClient, KafkaProducer

    topics = [f"{tag}-t{i}" for i in range(count)]
    groups = [f"{tag}-g{i}" for i in range(count)]

    def prepare() -> tuple[Any, list[Any]]:
        admin = KafkaAdminClient(bootstrap_servers=urls.kafka, request_timeout_ms=30_000)
        admin.create_topics(
            {t: {"num_partitions": 1, "replication_factor": 1} for t in topics},
            timeout_ms=30_000,
            wait_for_metadata=True,
        )
        admin.close()
        producer = KafkaProducer(bootstrap_servers=urls.kafka, linger_ms=0, acks=1)
        admins = [KafkaAdminClient(bootstrap_servers=urls.kafka) for _ in topics]
        return producer, admins

    producer, admins = await asyncio.to_thread(prepare)
    lanes: list[KafkaLane] = [
        KafkaLane(
            producer,
            admins[i],
            topics[i],
            groups[i],
            {
                "backend": "kafka",
                "bootstrapServers": urls.kafka,
                "consumerGroup": groups[i],
                "topic": topics[i],
                "lagThreshold": "1",
                "activationLagThreshold": "0",
            },
        )
        for i in range(count)
    ]
    # the group has committed offsets (at the log end, 0) before its stream opens: lag 0
    await asyncio.gather(*(lane.drain() for lane in lanes))

    def teardown() -> None:
        producer.close()
        admin = KafkaAdminClient(bootstrap_servers=urls.kafka)
        try:
            admin.delete_groups(groups)
            admin.delete_topics(topics)
        finally:
            admin.close()
            for lane_admin in admins:
                lane_admin.close()

    async def cleanup() -> None:
        await asyncio.to_thread(teardown)

    return LaneSet(
        list(lanes),
        cleanup,
        source="the scaler's own read counter x 4: a batched read of the watched groups is one "
        "Metadata (topics), one OffsetFetch (every group), one Metadata + one ListOffsets "
        "(leaders); the broker has no request metrics without JMX",
    )


class StreamReader:
    """Reads one StreamIsActive stream; each message is stamped when it arrives."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.messages: asyncio.Queue[tuple[float, bool]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for message in self.call:
            self.messages.put_nowait((time.perf_counter(), bool(message.result)))

    async def next(self, within: float) -> tuple[float, bool]:
        getter = asyncio.ensure_future(self.messages.get())
        done, _ = await asyncio.wait(
            {getter, self.task}, timeout=within, return_when="FIRST_COMPLETED"
        )
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            code = await self.call.code()
            raise RuntimeError(f"stream ended with {code.name}: {await self.call.details()}")
        raise TimeoutError(f"no stream message within {within:g}s")

    def stale(self) -> int:
        n = 0
        while not self.messages.empty():
            self.messages.get_nowait()
            n += 1
        return n

    def cancel(self) -> None:
        self.call.cancel()
        self.task.cancel()


async def run_lane(
    lane: Lane,
    stub: Any,
    activations: int,
    interval: float,
    latencies: list[float],
    anomalies: list[str],
) -> None:
    """Open the lane's stream and activate its queue ``activations`` times."""
    ref = pb.ScaledObjectRef(name="activation", namespace=NAMESPACE, scalerMetadata=lane.metadata)
    reader = StreamReader(stub.StreamIsActive(ref))
    try:
        # HTTP statistics of a new queue take up to a second; the stream stays silent until then
        _, initial = await reader.next(30)
        if initial:
            raise RuntimeError(f"initial state of an empty queue is true ({lane.metadata})")
        for _ in range(activations):
            # start at a random phase of the watch interval, so latencies sample all of it
            await asyncio.sleep(0.01 + random.uniform(0, interval))
            if reader.stale():
                anomalies.append("unexpected stream message between activations")
            start = time.perf_counter()
            await lane.enqueue()
            arrived, value = await reader.next(30)
            if not value:
                raise RuntimeError("stream sent false after an enqueue")
            latencies.append(arrived - start)
            await lane.drain()
            deadline = time.monotonic() + 30
            while (await stub.IsActive(ref, timeout=3)).result:
                if time.monotonic() > deadline:
                    raise RuntimeError("IsActive still true 30 s after draining")
                await asyncio.sleep(0.01)
    finally:
        reader.cancel()


# --- output -----------------------------------------------------------------------------------


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            if math.isinf(value):
                return "inf"
            return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h)
        for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in text_rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """NaN and infinities become null (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in read_text("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in read_text("/proc/meminfo").splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "loadavg_start": read_text("/proc/loadavg").split()[:3],
    }


# --- the benchmark ----------------------------------------------------------------------------


class ScenarioError(Exception):
    """A scenario could not be measured."""


class Bench:
    """Runs the selected scenarios and collects results, errors and target checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = Sizes.quick() if args.quick else Sizes()
        for key in vars(self.sizes):
            override = getattr(args, key, None)
            if override is not None:
                setattr(self.sizes, key, override)
        self.modes: list[str] = args.modes
        self.pin = (os.cpu_count() or 1) >= 2 and not args.no_pin
        self.server_cpu = SERVER_CPU if self.pin else None
        self.load_cpu = LOAD_CPU if self.pin else None
        self.tag = f"kqs-bench-{uuid.uuid4().hex[:8]}"
        self.workdir = Path(tempfile.mkdtemp(prefix="kqs-bench-"))
        # server logs are kept (bench/results is gitignored): warnings point at them
        self.logs = RESULTS / "keda_load_logs"
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self.ghz = Path()
        self.redis = RedisBroker(args.redis_url, self.workdir, self.load_cpu)
        self.urls = Urls(
            kafka=args.kafka_bootstrap,
            amqp=args.amqp_url,
            rabbit_http=args.rabbitmq_http,
            rabbit_prometheus=args.rabbitmq_prometheus,
        )
        self.results: dict[str, Any] = {}
        self.errors: list[dict[str, str]] = []
        self.ttl = DEFAULTS.cache_ttl
        self.stops: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    # -- plumbing

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    async def ghz_run(self, server: Server, load: GhzLoad) -> GhzReport:
        out = self.workdir / f"ghz-{uuid.uuid4().hex[:8]}.json"
        report = await run_ghz(self.ghz, server.target, load, out, self.load_cpu)
        if report.count and not report.ok:
            raise ScenarioError(
                f"ghz {load.method}: no request succeeded: {report.statuses} {report.errors}"
            )
        return report

    def data(self, name: str, messages: list[dict[str, Any]]) -> Path:
        return write_data(self.workdir / f"{name}.json", messages)

    @contextlib.asynccontextmanager
    async def server(self, kind: str, mode: str) -> Any:
        """A fresh server for one measurement, stopped (and gone) before anything else runs."""
        server = Server(kind, mode, self.logs, self.server_cpu)
        try:
            await server.start()
            yield server
        finally:
            started = time.perf_counter()
            status = await server.stop()
            stop: dict[str, Any] = {"kind": kind, "mode": mode, "status": status}
            stop["seconds"] = round(time.perf_counter() - started, 1)
            self.stops.append(stop)
            if status not in (0, -signal.SIGTERM):
                message = (
                    f"{kind} ({mode}) did not exit cleanly on SIGTERM (status {status}, "
                    f"after {stop['seconds']}s); log {server.log.relative_to(ROOT)}"
                )
                if mode == "naive":  # a benchmark-only mode, overloaded on purpose
                    self.warnings.append(message)
                    self.say(f"  warning: {message}")
                else:
                    raise RuntimeError(f"{message}:\n{server.tail()}")

    async def scenario(self, name: str, body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self.say(f"scenario {name}: start")
        started = time.perf_counter()
        try:
            self.results[name] = await body()
            self.results[name]["elapsed_s"] = round(time.perf_counter() - started, 1)
            self.say(f"scenario {name}: done in {time.perf_counter() - started:.0f}s")
        except Exception as err:  # noqa: BLE001 - every failure is reported, the run goes on
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            self.errors.append({"scenario": name, "error": detail})
            self.say(f"scenario {name}: FAILED: {detail}")
            if self.args.verbose:
                traceback.print_exc()

    # -- scenario (a): poll rounds and sustained KEDA pattern

    async def poll(self) -> dict[str, Any]:
        s = self.sizes
        queues = [f"{self.tag}-Poll-{j:03d}" for j in range(s.poll_queues)]
        objects = redis_objects(s.poll_objects, queues, self.redis.address, f"{self.tag}-poll")
        await self.redis.fill(queues)
        refs = self.data("poll-refs", [o.ref() for o in objects])
        polled = self.data("poll-metrics", [o.metrics_request(hpa=False) for o in objects])
        hpa = self.data("poll-metrics-hpa", [o.metrics_request(hpa=True) for o in objects])
        out: dict[str, Any] = {
            "objects": s.poll_objects,
            "queues": s.poll_queues,
            "concurrency": s.poll_concurrency,
            "cache_ttl_s": self.ttl,
        }
        try:
            for mode in self.modes:
                async with self.server("scaler", mode) as server:
                    out[mode] = await self._poll_mode(server, objects, refs, polled, hpa)
        finally:
            await self.redis.drop(queues)
        for kind in ("poll_round", "hpa_round"):
            if "normal" in out and "naive" in out:
                out.setdefault("ratios", {})[f"{kind}_broker_requests_naive_over_normal"] = ratio(
                    out["naive"][kind]["broker_requests"], out["normal"][kind]["broker_requests"]
                )
                out["ratios"][f"{kind}_p99_naive_over_normal"] = ratio(
                    out["naive"][kind]["latency_p99_ms"], out["normal"][kind]["latency_p99_ms"]
                )
        if "normal" in out and "naive" in out:
            out["ratios"]["sustained_broker_per_s_naive_over_normal"] = ratio(
                out["naive"]["sustained"]["broker_requests_per_s"],
                out["normal"]["sustained"]["broker_requests_per_s"],
            )
            out["ratios"]["sustained_p99_naive_over_normal"] = ratio(
                out["naive"]["sustained"]["latency_p99_ms"],
                out["normal"]["sustained"]["latency_p99_ms"],
            )
        return out

    async def _round(
        self, server: Server, refs: Path, metrics: Path, n: int, deadline: float | None
    ) -> dict[str, Any]:
        """GetMetricSpec, GetMetrics, IsActive for every object, as three sequential phases."""
        s = self.sizes
        before = await snapshot(server, self.redis, self.server_cpu)
        reports = []
        first_read_at = 0.0
        for method, data in (("GetMetricSpec", refs), ("GetMetrics", metrics), ("IsActive", refs)):
            if method == "GetMetrics":
                first_read_at = time.perf_counter()
            load = GhzLoad(method, data, s.poll_concurrency, total=n, deadline=deadline)
            reports.append(await self.ghz_run(server, load))
        after = await snapshot(server, self.redis, self.server_cpu)
        win = window(before, after)
        requests = win["redis"]["requests"]
        # reads can only happen from the first GetMetrics on: windows of the TTL from there
        reading = after.at - first_read_at
        windows = max(1, math.ceil(reading / self.ttl)) if self.ttl > 0 else 1
        queues = self.sizes.poll_queues
        return {
            **merge_reports(reports, after.at - before.at),
            "broker_requests": requests,
            "broker_by_command": win["redis"]["by_command"],
            "reading_s": round(reading, 3),
            "ttl_windows": windows,
            "broker_requests_per_queue_per_window": round(requests / (queues * windows), 2),
            "server_cpu_pct": win["server_cpu_pct"],
            "server_core_foreign_pct": win.get("server_core_foreign_pct"),
            "coalescing": win.get("coalescing"),
        }

    async def _poll_mode(
        self, server: Server, objects: list[ScaledObject], refs: Path, polled: Path, hpa: Path
    ) -> dict[str, Any]:
        s = self.sizes
        n = len(objects)
        self.say(f"  poll {server.mode}: warm-up (GetMetricSpec x {n}, as at HPA creation)")
        await self.ghz_run(server, GhzLoad("GetMetricSpec", refs, s.poll_concurrency, total=n))
        # one read per queue: the scaler's connection and its script are in place, as in
        # steady state (a fresh Redis answers the first EVALSHA with NOSCRIPT, then EVAL)
        await self.ghz_run(server, GhzLoad("GetMetrics", polled, 1, total=s.poll_queues))
        await asyncio.sleep(self.ttl + 0.2)
        self.say(f"  poll {server.mode}: one poll round ({3 * n} RPCs)")
        result: dict[str, Any] = {"poll_round": await self._round(server, refs, polled, n, None)}
        await asyncio.sleep(self.ttl + 0.2)
        self.say(f"  poll {server.mode}: one HPA round (3 s deadline, lower-cased names)")
        result["hpa_round"] = await self._round(server, refs, hpa, n, 3.0)
        await asyncio.sleep(self.ttl + 0.2)
        rate = max(1, round(n / s.poll_interval))
        self.say(
            f"  poll {server.mode}: sustained {s.sustained_seconds:g}s, {s.poll_streams} streams, "
            f"poll + HPA every {s.poll_interval:g}s per object ({6 * rate} RPC/s offered)"
        )
        holder = await StreamHolder.open(
            server.target,
            objects[: s.poll_streams],
            self.workdir,
            self.load_cpu,
            allow_partial=server.mode == "naive",
            ready_within=20.0 if server.mode == "naive" else 60.0,
        )
        try:
            await asyncio.sleep(1.0)
            base0 = await snapshot(server, self.redis, self.server_cpu)
            await asyncio.sleep(s.baseline_seconds)
            base1 = await snapshot(server, self.redis, self.server_cpu)
            baseline = window(base0, base1)
            loads = [
                GhzLoad(
                    method,
                    data,
                    s.poll_concurrency,
                    duration=s.sustained_seconds,
                    rps=rate,
                    deadline=deadline,
                )
                for data_kind, deadline in (("poll", None), ("hpa", 3.0))
                for method, data in (
                    ("GetMetricSpec", refs),
                    ("GetMetrics", polled if data_kind == "poll" else hpa),
                    ("IsActive", refs),
                )
            ]
            before = await snapshot(server, self.redis, self.server_cpu)
            reports = await asyncio.gather(*(self.ghz_run(server, load) for load in loads))
            after = await snapshot(server, self.redis, self.server_cpu)
            during = window(before, after)
            memory = server.memory()
        finally:
            held = await holder.close()
        sustained = {
            **merge_reports(reports, after.at - before.at),
            "offered_rpc_per_s": 6 * rate,
            "streams": s.poll_streams,
            **holder.readiness(),
            "streams_report": held,
            "broker_requests_per_s": during["redis"]["per_s"],
            "broker_requests_per_s_streams_only": baseline["redis"]["per_s"],
            "broker_requests_per_queue_per_s": round(during["redis"]["per_s"] / s.poll_queues, 2),
            "server_cpu_pct": during["server_cpu_pct"],
            "window": during,
            **memory,
        }
        result["sustained"] = sustained
        return result

    # -- scenario (b): GetMetrics throughput against the no-op ceiling

    async def throughput(self) -> dict[str, Any]:
        s = self.sizes
        queues = [f"{self.tag}-Tp-{j:03d}" for j in range(s.tp_queues)]
        objects = redis_objects(s.tp_objects, queues, self.redis.address, f"{self.tag}-tp")
        await self.redis.fill(queues)
        refs = self.data("tp-refs", [o.ref() for o in objects])
        metrics = self.data("tp-metrics", [o.metrics_request(hpa=False) for o in objects])
        out: dict[str, Any] = {
            "objects": s.tp_objects,
            "queues": s.tp_queues,
            "concurrency": s.tp_concurrency,
            "seconds": s.tp_seconds,
            "streams": s.tp_streams,
        }
        load = GhzLoad("GetMetrics", metrics, s.tp_concurrency, duration=s.tp_seconds)
        n = len(objects)
        try:
            async with self.server("noop", "noop") as server:
                self.say("  throughput noop: Python's own ceiling (constant answers)")
                await self.ghz_run(
                    server, GhzLoad("GetMetrics", metrics, s.tp_concurrency, total=min(n, 2000))
                )
                out["noop"] = await self._measure_load(server, load)
            for mode in self.modes:
                async with self.server("scaler", mode) as server:
                    self.say(f"  throughput {mode}: warm-up (GetMetricSpec + GetMetrics x {n})")
                    await self.ghz_run(server, GhzLoad("GetMetricSpec", refs, 50, total=n))
                    await self.ghz_run(server, GhzLoad("GetMetrics", metrics, 50, total=n))
                    holder = None
                    if s.tp_streams:
                        holder = await StreamHolder.open(
                            server.target,
                            objects[: s.tp_streams],
                            self.workdir,
                            self.load_cpu,
                            allow_partial=server.mode == "naive",
                            ready_within=20.0 if server.mode == "naive" else 60.0,
                        )
                    try:
                        self.say(f"  throughput {mode}: GetMetrics for {s.tp_seconds:g}s")
                        out[mode] = await self._measure_load(server, load)
                        if self.args.profile and mode == "normal":
                            out["profile"] = await self._profile(server, load)
                            out["handler_profile"] = await self._handler_profile()
                    finally:
                        if holder is not None:
                            await holder.close()
        finally:
            await self.redis.drop(queues)
        out["ratios"] = {}
        if "normal" in out:
            out["ratios"]["normal_over_noop_rps"] = ratio(
                out["normal"]["rpc_per_s"], out["noop"]["rpc_per_s"]
            )
            out["ratios"]["noop_over_normal_cpu_per_rpc"] = ratio(
                out["noop"]["server_cpu_us_per_rpc"], out["normal"]["server_cpu_us_per_rpc"]
            )
        if "normal" in out and "naive" in out:
            out["ratios"]["naive_over_normal_rps"] = ratio(
                out["naive"]["rpc_per_s"], out["normal"]["rpc_per_s"]
            )
            out["ratios"]["naive_over_normal_p99"] = ratio(
                out["naive"]["latency_p99_ms"], out["normal"]["latency_p99_ms"]
            )
            out["ratios"]["naive_over_normal_broker_per_s"] = ratio(
                out["naive"]["broker_requests_per_s"], out["normal"]["broker_requests_per_s"]
            )
        return out

    async def _measure_load(self, server: Server, load: GhzLoad) -> dict[str, Any]:
        before = await snapshot(server, self.redis, self.server_cpu)
        report = await self.ghz_run(server, load)
        after = await snapshot(server, self.redis, self.server_cpu)
        win = window(before, after)
        wall = report.wall_seconds or (after.at - before.at)
        cpu_s = win["server_cpu_pct"] * win["seconds"] / 100
        us_per_rpc = round(1e6 * cpu_s / report.count, 1) if report.count else math.nan
        return {
            **merge_reports([report], wall),
            "broker_requests_per_s": win["redis"]["per_s"],
            "server_cpu_pct": win["server_cpu_pct"],
            # CPU per RPC barely depends on what else runs on the core: the rate the server
            # would reach with the whole core is 10^6 / this
            "server_cpu_us_per_rpc": us_per_rpc,
            "rpc_per_s_at_full_core": round(1e6 / us_per_rpc) if us_per_rpc > 0 else math.nan,
            "load_generator_cpu_pct": round(100 * win["ended_children_cpu_s"] / win["seconds"], 1),
            "window": win,
            **server.memory(),
        }

    async def _handler_profile(self) -> dict[str, Any]:
        """``bench.handler_profile`` pinned to the server's core: the scaler's own Python per
        GetMetrics, without gRPC, and where it goes (cProfile)."""
        s = self.sizes
        self.say(
            "  throughput: the handler alone, timed and under cProfile (bench.handler_profile)"
        )
        argv = [sys.executable, "-m", "bench.handler_profile"]
        argv += ["--redis-address", self.redis.address, "--objects", str(s.tp_objects)]
        argv += ["--queues", str(s.tp_queues)]
        proc = await asyncio.create_subprocess_exec(
            *pinned(argv, self.server_cpu),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await proc.communicate()
        if proc.returncode != 0:
            return {"failed": stderr.decode(errors="replace")[-800:]}
        result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
        return result

    async def _profile(self, server: Server, load: GhzLoad) -> dict[str, Any]:
        """A py-spy profile of the scaler under the same load (a separate run, not measured)."""
        py_spy = self.args.py_spy or shutil.which("py-spy")
        if not py_spy:
            return {"skipped": "py-spy not found (pip install py-spy, or --py-spy PATH)"}
        raw = RESULTS / "keda_load_profile.txt"
        seconds = max(2, int(load.duration or 10) - 2)
        self.say(f"  throughput normal: py-spy profile for {seconds}s (extra run)")
        ghz_task = asyncio.ensure_future(self.ghz_run(server, load))
        await asyncio.sleep(1.0)
        argv = [py_spy, "record", "--pid", str(server.pid), "--duration", str(seconds)]
        argv += ["--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"]
        proc = await asyncio.create_subprocess_exec(
            *pinned(argv, self.load_cpu),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        report = await ghz_task
        if proc.returncode != 0 or not raw.exists():
            return {"failed": output.decode(errors="replace")[-400:]}
        return {
            "raw": str(raw.relative_to(ROOT)),
            "rpc_per_s_while_profiled": round(report.rps, 1),
            **summarize_profile(raw),
        }

    # -- scenarios (c) and (e): open streams, known objects, watcher broker load, RSS

    async def streams(self) -> dict[str, Any]:
        s = self.sizes
        queues = [f"{self.tag}-St-{j:03d}" for j in range(s.stream_queues)]
        objects = redis_objects(s.known_objects, queues, self.redis.address, f"{self.tag}-st")
        await self.redis.fill(queues)
        refs = self.data("st-refs", [o.ref() for o in objects])
        metrics = self.data("st-metrics", [o.metrics_request(hpa=False) for o in objects])
        out: dict[str, Any] = {
            "known_objects": s.known_objects,
            "streams": s.streams,
            "queues": s.stream_queues,
            "connection_identities": 1,
            "watch_interval_s": _watch_interval("redis"),
        }
        try:
            for mode in self.modes:
                async with self.server("scaler", mode) as server:
                    n = len(objects)
                    self.say(f"  streams {mode}: {n} known ScaledObjects, {s.streams} streams")
                    await self.ghz_run(server, GhzLoad("GetMetricSpec", refs, 50, total=n))
                    await self.ghz_run(server, GhzLoad("GetMetrics", metrics, 50, total=n))
                    holder = await StreamHolder.open(
                        server.target,
                        objects[: s.streams],
                        self.workdir,
                        self.load_cpu,
                        allow_partial=server.mode == "naive",
                        ready_within=20.0 if server.mode == "naive" else 60.0,
                    )
                    try:
                        await asyncio.sleep(s.stream_settle)
                        before = await snapshot(server, self.redis, self.server_cpu)
                        await asyncio.sleep(s.stream_window)
                        after = await snapshot(server, self.redis, self.server_cpu)
                        win = window(before, after)
                        connections = await self.redis.scaler_connections()
                        memory = server.memory()
                    finally:
                        held = await holder.close()
                    per_s = win["redis"]["per_s"]
                    out[mode] = {
                        "broker_requests_per_s": per_s,
                        "broker_requests_per_s_per_connection": per_s,
                        "tcp_connections": connections,
                        "broker_requests_per_s_per_tcp_connection": round(
                            per_s / max(connections, 1), 1
                        ),
                        "lengths_read_per_s": round(
                            win["redis"]["script_internal_calls"] / 2 / win["seconds"], 1
                        ),
                        "server_cpu_pct": win["server_cpu_pct"],
                        **holder.readiness(),
                        "stream_holder": held,
                        "window": win,
                        **memory,
                    }
        finally:
            await self.redis.drop(queues)
        if "normal" in out and "naive" in out:
            out["ratios"] = {
                "naive_over_normal_broker_per_s": ratio(
                    out["naive"]["broker_requests_per_s"], out["normal"]["broker_requests_per_s"]
                ),
                "naive_over_normal_rss": ratio(out["naive"]["rss_mb"], out["normal"]["rss_mb"]),
                "naive_over_normal_server_cpu": ratio(
                    out["naive"]["server_cpu_pct"], out["normal"]["server_cpu_pct"]
                ),
            }
        return out

    # -- scenario (d): activation latency per backend

    async def activation(self) -> dict[str, Any]:
        s = self.sizes
        out: dict[str, Any] = {"activations_per_backend": s.activations}
        failures = []
        for mode in self.args.activation_modes:
            async with self.server("scaler", mode) as server:
                out[mode] = {}
                for backend in self.args.backends:
                    try:
                        out[mode][backend] = await self._activate(server, backend)
                    except Exception as err:  # noqa: BLE001 - reported, the next backend runs
                        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
                        out[mode][backend] = {"error": detail}
                        failures.append(f"{mode} {backend}: {detail}")
                        self.say(f"  activation {mode} {backend}: FAILED: {detail}")
        if failures:
            self.errors.extend({"scenario": "activation", "error": f} for f in failures)
        return out

    async def _activate(self, server: Server, backend: str) -> dict[str, Any]:
        s = self.sizes
        lanes_n = {"rabbitmq-http": s.http_lanes, "rabbitmq-amqp": s.amqp_lanes}.get(
            backend, s.lanes
        )
        tag = f"{self.tag}-{backend}"
        if backend == "redis":
            lanes = await redis_lanes(self.redis, lanes_n, tag)
        elif backend == "rabbitmq-amqp":
            lanes = await rabbit_lanes(self.urls, lanes_n, tag, "amqp")
        elif backend == "rabbitmq-http":
            lanes = await rabbit_lanes(self.urls, lanes_n, tag, "http")
        elif backend == "kafka":
            lanes = await kafka_lanes(self.urls, lanes_n, tag)
        else:
            raise ValueError(f"unknown backend {backend}")
        scaler_backend = backend.split("-")[0]
        interval = _watch_interval(scaler_backend)
        per_lane = math.ceil(s.activations / lanes_n)
        self.say(
            f"  activation {server.mode} {backend}: {per_lane * lanes_n} activations "
            f"over {lanes_n} queues (watch interval {interval * 1000:g} ms)"
        )
        latencies: list[float] = []
        anomalies: list[str] = []
        try:
            extra = await lanes.counters() if lanes.counters else None
            redis = self.redis if backend == "redis" else None
            before = await snapshot(server, redis, self.server_cpu, extra)
            await asyncio.gather(
                *(
                    run_lane(lane, server.stub, per_lane, interval, latencies, anomalies)
                    for lane in lanes.lanes
                )
            )
            extra = await lanes.counters() if lanes.counters else None
            after = await snapshot(server, redis, self.server_cpu, extra)
        finally:
            await lanes.cleanup()
        win = window(before, after)
        reads = win.get("scaler_reads", {}).get(scaler_backend, 0)
        result: dict[str, Any] = {
            "queues": lanes_n,
            "watch_interval_ms": interval * 1000,
            **latency_summary(latencies),
            "anomalies": anomalies[:5],
            "scaler_reads_per_s": round(reads / win["seconds"], 1),
            "broker_source": lanes.source,
            "window": win,
        }
        if "redis" in win:
            result["broker_requests_per_s"] = win["redis"]["per_s"]
        elif "broker_counters" in win:
            result["broker_requests_per_s"] = round(
                win["broker_counters"]["channels_opened"] / win["seconds"], 1
            )
        elif backend == "kafka":
            result["broker_requests_per_s"] = round(
                result["scaler_reads_per_s"] * KAFKA_REQUESTS_PER_READ, 1
            )
        else:
            result["broker_requests_per_s"] = result["scaler_reads_per_s"]
        return result

    # -- the run

    async def run(self) -> int:
        started = time.perf_counter()
        self.say(f"workdir {self.workdir}; pinning {'on' if self.pin else 'OFF'}")
        if self.pin:
            os.sched_setaffinity(0, {LOAD_CPU})
        self.ghz = find_ghz(self.args.ghz)
        self.say(f"ghz: {self.ghz}")
        await self.redis.start()
        self.say(f"redis {self.redis.version} at {self.redis.address}")
        bodies: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "poll": self.poll,
            "throughput": self.throughput,
            "streams": self.streams,
            "activation": self.activation,
        }
        try:
            for name in self.args.scenarios:
                await self.scenario(name, bodies[name])
        finally:
            await self.redis.close()
        targets = check_targets(self.results, self.sizes)
        report = {
            "command": " ".join(
                shlex.quote(a)
                for a in [Path(sys.executable).name, "-m", "bench.keda_load", *sys.argv[1:]]
            ),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {**machine(), "loadavg_end": read_text("/proc/loadavg").split()[:3]},
            "setup": {
                "server_cpu": self.server_cpu,
                "load_cpu": self.load_cpu,
                "ghz": str(self.ghz),
                "redis": f"{self.redis.version} at {self.redis.address}"
                + (" (private, pinned with the load)" if not self.args.redis_url else ""),
                "kafka": self.urls.kafka,
                "rabbitmq": f"{self.urls.amqp.split('@')[-1]} (AMQP), "
                f"{self.urls.rabbit_http.split('@')[-1]} (HTTP)",
                "scaler_defaults": {
                    "cache_ttl_s": DEFAULTS.cache_ttl,
                    "watch_intervals_s": dict(DEFAULTS.watch_intervals),
                    "watch_max_requests": DEFAULTS.watch_max_requests,
                },
            },
            "sizes": vars(self.sizes),
            "modes": self.modes,
            "scenarios": self.results,
            "targets": targets,
            "errors": self.errors,
            "warnings": self.warnings,
            "server_stops": self.stops,
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        output = write_report(Path(self.args.output), report)
        print()
        print(summary_tables(report))
        print(f"\nwritten to {output}; {report['elapsed_s']:.0f}s")
        if self.errors:
            print(f"\n{len(self.errors)} scenario error(s):", file=sys.stderr)
            for error in self.errors:
                print(f"  {error['scenario']}: {error['error']}", file=sys.stderr)
            print(
                "(a broker that cannot be reached: `make brokers` starts them, "
                "`scripts/brokers.sh env` prints their addresses; server logs are in "
                f"{self.logs.relative_to(ROOT)}/)",
                file=sys.stderr,
            )
            return 1
        if self.args.strict and any(t["met"] is False for t in targets):
            return 1
        shutil.rmtree(self.workdir, ignore_errors=True)
        return 0


def write_report(output: Path, report: dict[str, Any]) -> Path:
    """Write the JSON report (strict JSON: NaN and infinities as null)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(jsonable(report), indent=2) + "\n")
    return output


def summarize_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the hottest frames of a py-spy ``--format raw`` file."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n

    def best(counts: dict[str, int]) -> list[list[Any]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[round(100 * n / total, 1), frame] for frame, n in ranked]

    return (
        {"samples": total, "self_pct": best(own), "inclusive_pct": best(inclusive)}
        if total
        else {"samples": 0}
    )


# --- targets ----------------------------------------------------------------------------------


def _get(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def check_targets(results: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Every target of the issue with the measured figure and whether it is met (None: not run)."""
    targets: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: Any, met: bool | None, note: str = "") -> None:
        targets.append(
            {"target": name, "goal": target, "measured": measured, "met": met, "note": note}
        )

    def le(value: Any, limit: float) -> bool | None:
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return bool(value <= limit)

    def ge(value: Any, limit: float) -> bool | None:
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return bool(value >= limit)

    act = _get(results, "activation", "normal") or {}
    full = sizes.activations >= 200
    note = "" if full else f"only {sizes.activations} activations (quick run)"
    for backend, p50_limit, p99_limit in (
        ("redis", 20.0, 60.0),
        ("rabbitmq-amqp", None, 100.0),
        ("rabbitmq-http", None, 100.0),
        ("kafka", None, 500.0),
    ):
        r = act.get(backend) or {}
        if p50_limit is not None:
            add(
                f"activation {backend} p50",
                f"<= {p50_limit:g} ms",
                r.get("p50_ms"),
                le(r.get("p50_ms"), p50_limit),
                note,
            )
        add(
            f"activation {backend} p99",
            f"<= {p99_limit:g} ms",
            r.get("p99_ms"),
            le(r.get("p99_ms"), p99_limit),
            note,
        )
    for backend in ("redis", "rabbitmq-amqp", "rabbitmq-http", "kafka"):
        r = act.get(backend) or {}
        if "broker_requests_per_s" in r:
            add(
                f"watching {backend} ({r.get('queues')} queues)",
                "<= 50 broker requests/s per connection",
                r["broker_requests_per_s"],
                le(r["broker_requests_per_s"], 50),
                r.get("broker_source", ""),
            )
    st = _get(results, "streams", "normal") or {}
    add(
        f"watching {sizes.streams} streams on {sizes.stream_queues} Redis lists",
        "<= 50 broker requests/s per connection",
        st.get("broker_requests_per_s_per_connection"),
        le(st.get("broker_requests_per_s_per_connection"), 50),
        f"{st.get('tcp_connections')} TCP connection(s)" if st else "",
    )
    poll = _get(results, "poll") or {}
    for kind in ("poll_round", "hpa_round"):
        per_window = _get(poll, "normal", kind, "broker_requests_per_queue_per_window")
        add(
            f"{kind.replace('_', ' ')}: {sizes.poll_objects} objects on {sizes.poll_queues} queues",
            "<= 1 broker request per queue per coalescing window",
            per_window,
            le(per_window, 1.0),
            f"{_get(poll, 'normal', kind, 'broker_requests')} requests over "
            f"{_get(poll, 'normal', kind, 'ttl_windows')} window(s)"
            if per_window is not None
            else "",
        )
        ratio_value = _get(poll, "ratios", f"{kind}_broker_requests_naive_over_normal")
        add(
            f"{kind.replace('_', ' ')}: naive / normal broker requests",
            ">= 150",
            ratio_value,
            ge(ratio_value, 150),
        )
    tp = _get(results, "throughput") or {}
    rps = _get(tp, "normal", "rpc_per_s")
    p99 = _get(tp, "normal", "latency_p99_ms")
    add(
        f"GetMetrics throughput, {sizes.tp_objects} objects on {sizes.tp_queues} lists",
        ">= 4,000/s",
        rps,
        ge(rps, 4000),
        f"no-op ceiling {_get(tp, 'noop', 'rpc_per_s')}/s in the same run" if tp else "",
    )
    add("GetMetrics p99 at that load", "<= 15 ms", p99, le(p99, 15))
    share = _get(tp, "ratios", "normal_over_noop_rps")
    add(
        "GetMetrics throughput / no-op ceiling",
        ">= 0.85",
        share,
        ge(share, 0.85),
        f"CPU per RPC {_get(tp, 'normal', 'server_cpu_us_per_rpc')} us vs no-op "
        f"{_get(tp, 'noop', 'server_cpu_us_per_rpc')} us"
        if tp
        else "",
    )
    rss = st.get("rss_mb")
    add(
        f"RSS with {sizes.streams} streams and {sizes.known_objects} known objects",
        "<= 120 MB",
        rss,
        le(rss, 120),
    )
    return targets


def summary_tables(report: dict[str, Any]) -> str:
    """The stdout tables: load figures, activation, ratios, targets."""
    scenarios = report["scenarios"]
    parts = []
    rows = []

    def row(name: str, mode: str, r: dict[str, Any] | None, broker: Any, extra: str = "") -> None:
        if not r:
            return
        foreign = r.get("server_core_foreign_pct") or (r.get("window") or {}).get(
            "server_core_foreign_pct"
        )
        if foreign and foreign >= 10:
            extra += f"; core 0 shared: {foreign:g}% other load"
        rows.append(
            [
                name,
                mode,
                r.get("rpcs"),
                r.get("rpc_per_s"),
                r.get("latency_p50_ms"),
                r.get("latency_p99_ms"),
                r.get("latency_max_ms"),
                sum(v for k, v in (r.get("statuses") or {}).items() if k != "OK")
                if "statuses" in r
                else None,
                broker,
                r.get("server_cpu_pct"),
                r.get("rss_mb"),
                extra,
            ]
        )

    poll = scenarios.get("poll", {})
    tp = scenarios.get("throughput", {})
    st = scenarios.get("streams", {})
    for mode in ("normal", "naive"):
        if mode in poll:
            p = poll[mode]
            row(
                "poll round",
                mode,
                p["poll_round"],
                p["poll_round"]["broker_requests"],
                f"{p['poll_round']['ttl_windows']} TTL window(s)",
            )
            row(
                "HPA round",
                mode,
                p["hpa_round"],
                p["hpa_round"]["broker_requests"],
                f"{p['hpa_round']['ttl_windows']} TTL window(s)",
            )
            su = p["sustained"]
            row(
                "sustained",
                mode,
                su,
                f"{su['broker_requests_per_s']}/s",
                f"{su['streams']} streams, {su['offered_rpc_per_s']} RPC/s offered",
            )
    if "noop" in tp:
        row(
            "GetMetrics max",
            "no-op",
            tp["noop"],
            None,
            f"c={tp['concurrency']}, {tp['noop']['server_cpu_us_per_rpc']} us CPU/RPC",
        )
    for mode in ("normal", "naive"):
        if mode in tp:
            row(
                "GetMetrics max",
                mode,
                tp[mode],
                f"{tp[mode]['broker_requests_per_s']}/s",
                f"c={tp['concurrency']}, {tp[mode]['server_cpu_us_per_rpc']} us CPU/RPC, "
                f"load gen {tp[mode]['load_generator_cpu_pct']}% CPU",
            )
    for mode in ("normal", "naive"):
        if mode in st:
            r = st[mode]
            rows.append(
                [
                    "streams",
                    mode,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    f"{r['broker_requests_per_s']}/s",
                    r["server_cpu_pct"],
                    r["rss_mb"],
                    f"{st['streams']} streams, {st['known_objects']} known, "
                    f"{r['tcp_connections']} TCP conn",
                ]
            )
    if rows:
        parts.append(
            render(
                [
                    "scenario",
                    "mode",
                    "RPCs",
                    "RPC/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "errors",
                    "broker req",
                    "srv CPU%",
                    "RSS MB",
                    "notes",
                ],
                rows,
            )
        )
    act = scenarios.get("activation", {})
    act_rows = []
    for mode in ("normal", "naive"):
        for backend, r in (act.get(mode) or {}).items():
            if "error" in r:
                act_rows.append([backend, mode, None, None, None, None, None, r["error"][:60]])
                continue
            act_rows.append(
                [
                    backend,
                    mode,
                    r["count"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["max_ms"],
                    r["broker_requests_per_s"],
                    f"{r['queues']} queues, watch {r['watch_interval_ms']:g} ms",
                ]
            )
    if act_rows:
        parts.append(
            "Activation latency (enqueue into an empty queue -> `true` on the stream)\n"
            + render(
                ["backend", "mode", "n", "p50 ms", "p99 ms", "max ms", "broker req/s", "notes"],
                act_rows,
            )
        )
    ratio_rows = []
    for name, section in (("poll", poll), ("throughput", tp), ("streams", st)):
        for key, value in (section.get("ratios") or {}).items():
            ratio_rows.append([name, key, value])
    if ratio_rows:
        parts.append("Ratios\n" + render(["scenario", "ratio", "value"], ratio_rows))
    target_rows = [
        [
            t["target"],
            t["goal"],
            t["measured"],
            "not run" if t["met"] is None else t["met"],
            t["note"] if len(t["note"]) <= 60 else t["note"][:57] + "...",
        ]
        for t in report["targets"]
    ]
    parts.append("Targets\n" + render(["target", "goal", "measured", "met", "note"], target_rows))
    handler = tp.get("handler_profile") or {}
    if "scaler_us_per_call" in handler:
        lines = [
            "Profile (bench.handler_profile: GetMetrics awaited directly, no gRPC, on core 0)",
            f"  scaler handler {handler['scaler_us_per_call']} us/call, no-op "
            f"{handler['noop_us_per_call']} us/call; under ghz the server spends "
            f"{_get(tp, 'normal', 'server_cpu_us_per_rpc')} us CPU per RPC, the no-op "
            f"{_get(tp, 'noop', 'server_cpu_us_per_rpc')} us",
            "  most own time (cProfile, % of the profiled loop):",
        ]
        lines += [
            f"    {pct:5.1f}%  {calls:>7}  {where}"
            for pct, calls, where in handler["tottime_pct"][:10]
        ]
        parts.append("\n".join(lines))
    for warning in report.get("warnings", []):
        parts.append(f"warning: {warning}")
    return "\n\n".join(parts)


# --- command line -----------------------------------------------------------------------------


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)}")
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.keda_load",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    p.add_argument("--scenarios", type=_csv(SCENARIOS), default=list(SCENARIOS))
    p.add_argument("--modes", type=_csv(("normal", "naive")), default=["normal", "naive"])
    p.add_argument("--activation-modes", type=_csv(("normal", "naive")), default=["normal"])
    p.add_argument(
        "--backends", type=_csv(BACKENDS), default=list(BACKENDS), help="activation backends"
    )
    p.add_argument("--output", default=str(RESULTS / "keda_load.json"))
    p.add_argument("--ghz", help="ghz binary (default: scripts/ghz.sh builds and finds it)")
    p.add_argument("--redis-url", help="measure this Redis instead of a private redis-server")
    p.add_argument(
        "--kafka-bootstrap", default=_env("SCALER_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    p.add_argument(
        "--amqp-url",
        default=_env("SCALER_TEST_AMQP_URL", "amqp://kqs:kqs-secret@127.0.0.1:15673/%2F"),
    )
    p.add_argument(
        "--rabbitmq-http",
        default=_env("SCALER_TEST_RABBITMQ_HTTP", "http://kqs:kqs-secret@127.0.0.1:15674"),
    )
    p.add_argument(
        "--rabbitmq-prometheus",
        default=_env("SCALER_TEST_RABBITMQ_PROMETHEUS", "http://127.0.0.1:15675/metrics"),
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile the GetMetrics path: bench.handler_profile (cProfile), py-spy if found",
    )
    p.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed too")
    p.add_argument("--verbose", action="store_true", help="tracebacks of failed scenarios")
    sizes = p.add_argument_group("sizes (default: full run; --quick shrinks them)")
    for name, value in vars(Sizes()).items():
        sizes.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=None, help=f"default {value}"
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(Bench(args).run())


if __name__ == "__main__":
    sys.exit(main())
