"""Soak: the KEDA call pattern for a long time while the brokers are restarted in turn.

    python -m bench.soak [--minutes 10] [--restart-every 90] [--rps 300] [--streams 100]

Needs the test brokers (``make brokers``). Starts ``keda-queue-scaler serve`` as a subprocess,
drives GetMetricSpec, GetMetrics and IsActive over Redis lists, RabbitMQ queues (AMQP) and a
Kafka group at a steady rate from this process, keeps StreamIsActive streams open, and every
``--restart-every`` seconds stops and starts one broker (Redis, RabbitMQ, Kafka in turn) through
``scripts/brokers.sh``. Reports RSS after warm-up and at the end (growth), RPCs and errors by
status code, the maximum RPC latency, and writes ``bench/results/soak.json``. Errors while a
broker is down are expected (UNAVAILABLE/DEADLINE_EXCEEDED); anything else is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from typing import Any

import grpc
import redis.asyncio as aioredis

from bench.harness import brokers
from bench.harness.keda_pattern import KedaPattern, Outcome
from bench.harness.paths import RESULTS
from bench.harness.ports import free_port
from bench.harness.processes import ChildProcess
from bench.harness.procfs import memory_mb
from bench.harness.scaler_process import serve_argv, wait_serving
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

#: what a call may answer while a broker is down (and NOT_FOUND: a queue not declared yet)
_EXPECTED = frozenset({"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND"})
#: seconds the scaler has to finish SIGTERM at the end
_STOP_GRACE = 30.0


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    env = brokers.script_env()
    redis_address = env["SCALER_TEST_REDIS_URL"].split("//", 1)[1].split("/", 1)[0]
    tag = uuid.uuid4().hex[:8]
    lists = [f"kqs-soak-{tag}-{i}" for i in range(10)]
    triggers: list[dict[str, str]] = [
        {"backend": "redis", "address": redis_address, "listName": name} for name in lists
    ]
    triggers += [
        {
            "backend": "rabbitmq",
            "host": env["SCALER_TEST_AMQP_URL"],
            "queueName": f"kqs-soak-{tag}-q{i}",
        }
        for i in range(3)
    ]
    triggers.append(
        {
            "backend": "kafka",
            "bootstrapServers": env["SCALER_TEST_KAFKA_BOOTSTRAP"],
            "consumerGroup": f"kqs-soak-{tag}",
            "topic": "__consumer_offsets",
        }
    )
    objects = [
        pb.ScaledObjectRef(
            name=f"so-{i}", namespace="soak", scalerMetadata=triggers[i % len(triggers)]
        )
        for i in range(args.objects)
    ]
    port = free_port()
    server = await ChildProcess.start(
        "scaler", serve_argv(port, 0, "--log-level", "WARNING"), RESULTS / "soak.log"
    )
    codes: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    max_latency = 0.0
    restarts: list[str] = []
    rss: list[tuple[float, float]] = []
    stop = asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)
            await wait_serving(channel)
            redis = aioredis.from_url(env["SCALER_TEST_REDIS_URL"])

            def record(outcome: Outcome) -> None:
                nonlocal max_latency
                codes[outcome.code] += 1
                if outcome.code not in _EXPECTED:
                    unexpected[f"{outcome.code}: {outcome.details}"[:160]] += 1
                max_latency = max(max_latency, outcome.seconds)

            load = KedaPattern(stub, objects, args.rps, record)

            async def stream(ref: pb.ScaledObjectRef) -> None:
                while not stop.is_set():
                    try:
                        async for _ in stub.StreamIsActive(ref):
                            if stop.is_set():
                                return
                    except grpc.aio.AioRpcError as err:
                        codes[f"stream {err.code().name}"] += 1
                        await asyncio.sleep(1)

            async def producer() -> None:
                while not stop.is_set():
                    try:
                        for name in lists:
                            await redis.rpush(name, "job")
                            await redis.ltrim(name, 0, 20)
                    except Exception:  # noqa: BLE001 - Redis is being restarted
                        await asyncio.sleep(1)
                    await asyncio.sleep(1)

            load.start()
            tasks = [asyncio.ensure_future(producer())]
            tasks += [asyncio.ensure_future(stream(objects[i])) for i in range(args.streams)]
            started = time.monotonic()
            end = started + args.minutes * 60
            next_restart = started + args.restart_every
            order = ["redis", "rabbitmq", "kafka"]
            while time.monotonic() < end:
                await asyncio.sleep(5)
                now = time.monotonic() - started
                rss.append((round(now, 1), memory_mb(server.pid)["rss_mb"]))
                if time.monotonic() >= next_restart:
                    broker = order[len(restarts) % len(order)]
                    await brokers.run("stop", broker)
                    await asyncio.sleep(args.outage)
                    await brokers.run("start", broker)
                    restarts.append(f"{broker} at {now:.0f}s")
                    next_restart = time.monotonic() + args.restart_every
            stop.set()
            await load.aclose()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis.delete(*lists)
            await redis.aclose()
    finally:
        exit_code = await server.stop(_STOP_GRACE)
    warm = [r for t, r in rss if t >= args.warmup] or [r for _, r in rss]
    growth = (warm[-1] - warm[0]) / warm[0] * 100 if warm else 0.0
    return {
        "minutes": args.minutes,
        "restarts": restarts,
        "rpcs": sum(v for k, v in codes.items() if not k.startswith("stream")),
        "codes": dict(codes),
        "unexpected_errors": dict(unexpected),
        "max_rpc_latency_ms": round(max_latency * 1000, 1),
        "rss_start_mb": warm[0] if warm else None,
        "rss_end_mb": warm[-1] if warm else None,
        "rss_growth_pct": round(growth, 1),
        "rss_samples": rss,
        "server_exit_code": exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--restart-every", type=float, default=90.0, help="seconds between broker restarts"
    )
    parser.add_argument("--outage", type=float, default=5.0, help="seconds a broker stays down")
    parser.add_argument("--rps", type=float, default=300.0, help="RPCs per second offered")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds before the first RSS reading"
    )
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    result = asyncio.run(soak(args))
    out = RESULTS / "soak.json"
    out.write_text(json.dumps(result, indent=2))
    restarts = ", ".join(result["restarts"])
    print(f"soak {args.minutes:g} min, {len(result['restarts'])} broker restarts: {restarts}")
    print(f"  RPCs {result['rpcs']:,}; by code {result['codes']}")
    print(f"  max RPC latency {result['max_rpc_latency_ms']} ms")
    print(
        f"  RSS {result['rss_start_mb']} MB after warm-up -> {result['rss_end_mb']} MB "
        f"({result['rss_growth_pct']:+.1f} %); server exit code {result['server_exit_code']}"
    )
    if result["unexpected_errors"]:
        print(f"  UNEXPECTED errors: {result['unexpected_errors']}")
    print(f"  written to {out}")
    if (
        result["unexpected_errors"]
        or result["rss_growth_pct"] >= 10
        or result["server_exit_code"] != 0
    ):
        sys.exit(1)


if __name__ == "__main__":
    main()
