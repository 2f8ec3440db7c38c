"""What every scenario of a run shares: sizes, cores, the measured Redis, ghz, servers, the log.

A scenario takes the :class:`Workbench` and returns its figures; the workbench records what goes
wrong on the way (server stops that were not clean, warnings) for the report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.brokers import BrokerAddresses
from bench.harness.ghz import GhzLoad, run_ghz, write_data
from bench.harness.ghz_report import GhzReport
from bench.harness.paths import REPO_ROOT, RESULTS
from bench.harness.scaler_facts import DEFAULTS
from bench.keda_load.lanes.stream_holder import StreamHolder
from bench.keda_load.objects import ScaledObject, redis_objects
from bench.keda_load.redis_broker import RedisBroker
from bench.keda_load.servers import Server
from bench.keda_load.sizes import Sizes

#: the core the measured server runs on, and the one the load generators and Redis share
SERVER_CPU = 0
LOAD_CPU = 1


class ScenarioError(Exception):
    """A scenario could not be measured."""


@dataclass(frozen=True)
class RedisWorkload:
    """ScaledObjects on Redis lists of the measured Redis, and their ghz data files.

    :param refs: ScaledObjectRefs (GetMetricSpec, IsActive)
    :param metrics: GetMetricsRequests as KEDA's poll loop sends them
    """

    queues: list[str]
    objects: list[ScaledObject]
    refs: Path
    metrics: Path


class Workbench:
    """The run's configuration and the plumbing the scenarios use."""

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
        self.brokers = BrokerAddresses(
            kafka=args.kafka_bootstrap,
            amqp=args.amqp_url,
            rabbit_http=args.rabbitmq_http,
            rabbit_prometheus=args.rabbitmq_prometheus,
        )
        self.errors: list[dict[str, str]] = []
        self.ttl = DEFAULTS.cache_ttl
        self.stops: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    async def ghz_run(self, server: Server, load: GhzLoad) -> GhzReport:
        """One ghz run on the load core; a run in which no request succeeded is an error."""
        out = self.workdir / f"ghz-{uuid.uuid4().hex[:8]}.json"
        report = await run_ghz(self.ghz, server.target, load, out, self.load_cpu)
        if report.count and not report.ok:
            raise ScenarioError(
                f"ghz {load.method}: no request succeeded: {report.statuses} {report.errors}"
            )
        return report

    def data(self, name: str, messages: list[dict[str, Any]]) -> Path:
        """A ghz data file in the run's working folder."""
        return write_data(self.workdir / f"{name}.json", messages)

    @contextlib.asynccontextmanager
    async def redis_workload(
        self, label: str, objects: int, queues: int
    ) -> AsyncIterator[RedisWorkload]:
        """``objects`` ScaledObjects on ``queues`` filled lists named after ``label``; the lists
        are deleted at the end."""
        names = [f"{self.tag}-{label}-{j:03d}" for j in range(queues)]
        prefix = label.lower()
        scaled = redis_objects(objects, names, self.redis.address, f"{self.tag}-{prefix}")
        await self.redis.fill(names)
        try:
            yield RedisWorkload(
                names,
                scaled,
                self.data(f"{prefix}-refs", [o.ref() for o in scaled]),
                self.data(f"{prefix}-metrics", [o.metrics_request(hpa=False) for o in scaled]),
            )
        finally:
            await self.redis.drop(names)

    async def hold_streams(self, server: Server, objects: Sequence[ScaledObject]) -> StreamHolder:
        """One StreamIsActive stream per object, held by the stream holder on the load core.

        In naive mode a read that keeps failing leaves its stream silent: the run goes on with
        the streams that did receive their initial state within 20 s.
        """
        naive = server.mode == "naive"
        return await StreamHolder.open(
            server.target,
            objects,
            self.workdir,
            self.load_cpu,
            allow_partial=naive,
            ready_within=20.0 if naive else 60.0,
        )

    @contextlib.asynccontextmanager
    async def server(self, kind: str, mode: str) -> AsyncIterator[Server]:
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
                    f"after {stop['seconds']}s); log {server.log.relative_to(REPO_ROOT)}"
                )
                if mode == "naive":  # a benchmark-only mode, overloaded on purpose
                    self.warnings.append(message)
                    self.say(f"  warning: {message}")
                else:
                    raise RuntimeError(f"{message}:\n{server.tail()}")
