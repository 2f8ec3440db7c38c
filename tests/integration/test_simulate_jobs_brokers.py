"""``simulate`` on a ScaledJob against a running scaler and real brokers: the seed's Kafka
ScaledJob fixture on a real consumer group's lag, and two Redis lists, changed by the test
between polls; the jobs created per poll are checked against KEDA's formulas
(:mod:`tests.keda_jobs`) fed with the values the run read."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaProducer

from scaler.tools.simulate import command
from scaler.tools.simulate.driver import CompressedClock
from tests.integration.kafka_fixtures import commit
from tests.keda_jobs import Jobs, Strategy, jobs_to_create
from tests.scaled_objects import manifest

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parents[1] / "fixtures" / "kafka-events-scaledjob.yaml"
#: simulated seconds per real second: a 30 s poll every 2 s, changes 1 s away from any poll
SPEED = 15.0


class StartedClock(CompressedClock):
    """The compressed real clock, telling the test's scripted changes when the run started."""

    def __init__(self, speed: float) -> None:
        super().__init__(speed)
        self.started = asyncio.Event()

    def start(self) -> None:
        super().start()
        self.started.set()


async def at(clock: StartedClock, when: float, change: Callable[[], Awaitable[Any]]) -> None:
    await clock.started.wait()
    await clock.sleep_until(when)
    await change()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(argv))


def produce_spread(bootstrap: str, topic: str, partitions: int, count: int) -> None:
    """``count`` records over ``partitions`` partitions, round robin, all acked."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(topic, b"event", partition=i % partitions) for i in range(count)]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=15)
    finally:
        producer.close(timeout=15)


def fixture_with(tmp_path: Path, topic: str, group: str, **spec: Any) -> Path:
    """The seed's Kafka ScaledJob fixture on the test's topic and group."""
    document = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    document["spec"].update(spec)
    document["spec"]["triggers"][0]["metadata"].update(topic=topic, consumerGroup=group)
    path = tmp_path / "scaledjob.yaml"
    path.write_text(manifest(document), encoding="utf-8")
    return path


def keda_created(rows: list[dict[str, Any]], targets: list[float], **keda: Any) -> list[int]:
    """What KEDA creates at each poll for the values, running and pending jobs the rows show."""
    created = []
    for row in rows:
        values = list(row["metrics"].values())
        triggers = [(v, t, v > 0) for v, t in zip(values, targets, strict=True)]
        created.append(jobs_to_create(triggers, row["running"], row["pending"], **keda))
    return created


async def test_the_seeds_kafka_scaled_job_on_a_real_lag_drained_by_the_test(
    serve, tmp_path, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=12), kafka_group()
    await asyncio.to_thread(produce_spread, kafka_bootstrap, topic, 12, 450)
    start = {(topic, p): 0 for p in range(12)}
    await asyncio.to_thread(commit, kafka_bootstrap, group, start)
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    path = fixture_with(tmp_path, topic, group)
    clock = StartedClock(SPEED)

    async def drain() -> None:  # the consumer the user runs: everything processed
        ends = {(topic, p): 38 if p < 6 else 37 for p in range(12)}
        await asyncio.to_thread(commit, kafka_bootstrap, group, ends)

    async def burst() -> None:  # 1300 more events: capped at 12 partitions x 100
        await asyncio.to_thread(produce_spread, kafka_bootstrap, topic, 12, 1300)

    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", str(SPEED),
                 "--duration", "180", "--drain", "--json")  # fmt: skip
    changes = [
        asyncio.create_task(at(clock, 45, drain)),
        asyncio.create_task(at(clock, 105, burst)),
    ]
    status = await command.run(args, {"KAFKA_BOOTSTRAP": kafka_bootstrap}, out, clock=clock)
    await asyncio.gather(*changes)

    assert status == 0
    rows = json.loads(out.getvalue())
    key = f"s0-kafka-{topic}"
    assert [(r["time"], r["metrics"][key]) for r in rows] == [
        (0, 450), (30, 450), (60, 0), (90, 0), (120, 1200), (150, 1200), (180, 1200),
    ]  # fmt: skip
    # 450 / lagThreshold 100 -> 5 jobs; drained at 60 s; 1200 / 100 -> maxReplicaCount 10
    assert [(r["running"], r["created"], r["succeeded"]) for r in rows] == [
        (0, 5, 0), (5, 0, 0), (0, 0, 5), (0, 0, 0), (0, 10, 0), (10, 0, 0), (10, 0, 0),
    ]  # fmt: skip
    assert [r["created"] for r in rows] == keda_created(rows, [100], high=10)
    assert rows[0]["reason"] == "default: maxScale 5 - running 0 = 5; created 5"


@pytest.mark.parametrize(
    ("scaling", "strategy"),
    [
        ({}, Strategy()),
        (
            {"strategy": "custom", "customScalingQueueLengthDeduction": 1,
             "customScalingRunningJobPercentage": "0.5"},
            Strategy("custom", 1, 0.5),
        ),
        ({"strategy": "accurate"}, Strategy("accurate")),
        ({"strategy": "eager"}, Strategy("eager")),
    ],
    ids=["default", "custom", "accurate", "eager"],
)  # fmt: skip
async def test_each_strategy_on_the_seeds_kafka_scaled_job(
    serve, tmp_path, kafka_bootstrap, kafka_topic, kafka_group, scaling, strategy
) -> None:
    topic, group = kafka_topic(partitions=24), kafka_group()
    await asyncio.to_thread(produce_spread, kafka_bootstrap, topic, 24, 250)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, p): 0 for p in range(24)})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    path = fixture_with(tmp_path, topic, group, scalingStrategy=scaling)
    clock = StartedClock(SPEED)

    async def burst() -> None:  # 1000 more events: a lag of 1250
        await asyncio.to_thread(produce_spread, kafka_bootstrap, topic, 24, 1000)

    async def progress() -> None:  # the consumers commit 650 of them: a lag of 600
        done = {(topic, p): 28 if p < 2 else 27 for p in range(24)}
        await asyncio.to_thread(commit, kafka_bootstrap, group, done)

    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", str(SPEED),
                 "--duration", "150", "--job-duration", "45", "--job-pending", "40", "--json")  # fmt: skip
    changes = [
        asyncio.create_task(at(clock, 45, burst)),
        asyncio.create_task(at(clock, 105, progress)),
    ]
    status = await command.run(args, {"KAFKA_BOOTSTRAP": kafka_bootstrap}, out, clock=clock)
    await asyncio.gather(*changes)

    assert status == 0
    rows = json.loads(out.getvalue())
    assert [r["metrics"][f"s0-kafka-{topic}"] for r in rows] == [250, 250, 1250, 1250, 600, 600]
    jobs = Jobs(45, 40)
    for row in rows:  # the jobs' life as tests.keda_jobs counts it
        assert (row["running"], row["pending"]) == jobs.counts(row["time"])
        jobs.create(row["time"], row["created"])
    assert [r["created"] for r in rows] == keda_created(rows, [100], high=10, strategy=strategy)
    # worked out by hand: jobs pending until 40 s after their creation, done at 85 s
    assert [r["created"] for r in rows] == {
        "default": [3, 0, 7, 3, 0, 3],  # 90 s: 10 - 7 running; 150 s: 6 - 3
        "custom": [2, 1, 8, 5, 0, 3],  # 90 s: min(10 - 1 - int(9 x 0.5), 10)
        "accurate": [3, 0, 7, 3, 0, 6],  # 150 s: 6 + 3 <= 10: 6 - 0 pending
        "eager": [3, 3, 1, 5, 0, 5],  # 30 s: min(10 - 3 - 3 pending, 3)
    }[strategy.name]


@pytest.mark.parametrize("calculation", ["max", "min", "avg", "sum"])
async def test_multiple_scalers_calculation_on_two_redis_lists(
    serve, tmp_path, redis_client, unique_key, redis_metadata, calculation
) -> None:
    first, second = unique_key(), unique_key()
    await redis_client.rpush(first, *range(25))
    running = await serve(cache_ttl=0.0)
    triggers = [
        {"type": "external", "metadata": redis_metadata(first, listLength="10")},
        {"type": "external", "metadata": redis_metadata(second, listLength="4")},
    ]
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "thumbnails", "namespace": "media"},
        "spec": {
            "jobTargetRef": {"template": {}},
            "maxReplicaCount": 6,
            "scalingStrategy": {"multipleScalersCalculation": calculation},
            "triggers": triggers,
        },
    }
    path = tmp_path / "scaledjob.yaml"
    path.write_text(manifest(document), encoding="utf-8")
    clock = StartedClock(30)

    async def arrive() -> None:
        await redis_client.rpush(second, *range(14))

    async def taken() -> None:
        await redis_client.ltrim(first, 0, 7)  # 8 left of 25

    out = io.StringIO()
    args = parse(str(path), "--address", running.address, "--speed", "30", "--duration", "90",
                 "--job-duration", "40", "--json")  # fmt: skip
    changes = [
        asyncio.create_task(at(clock, 15, arrive)),
        asyncio.create_task(at(clock, 45, taken)),
    ]
    status = await command.run(args, {}, out, clock=clock)
    await asyncio.gather(*changes)

    assert status == 0
    rows = json.loads(out.getvalue())
    assert [list(r["metrics"].values()) for r in rows] == [[25, 0], [25, 14], [8, 14], [8, 14]]
    assert [r["created"] for r in rows] == keda_created(
        rows, [10, 4], high=6, calculation=calculation
    )
    # maxValue 25 / 10 = 2.5, 14 / 4 = 3.5, 8 / 10 = 0.8; jobs done 40 s after their creation
    assert [r["created"] for r in rows] == {
        "max": [3, 0, 4, 0],  # the longer list: 25 -> 3 - 3 running, then 14 -> 4 - 0
        "min": [3, 1, 0, 1],  # the shorter: 14 -> 4 - 3, then 8 -> 1 - 1, then 1 - 0
        "avg": [3, 0, 3, 0],  # (2.5 + 3.5) / 2 -> 3 - 3, then (0.8 + 3.5) / 2 -> 3 - 0
        "sum": [3, 3, 2, 3],  # 2.5 + 3.5 = 6 - 3, then 4.3 -> 5 - 3, then 5 - 2
    }[calculation]
