"""``check`` and ``simulate`` on a ``mode: LagSeconds`` trigger against the real Kafka broker:
the age they show is that of the record the test produced."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from scaler.backends.base import OLDEST_AGE
from scaler.tools import check
from scaler.tools.simulate import command
from scaler.tools.simulate.driver import CompressedClock
from tests.integration.kafka_fixtures import age_of, ago, commit, kafka_metadata, produce_at
from tests.scaled_objects import manifest, scaled_object

pytestmark = pytest.mark.integration

#: how far a shown age may be from the record's timestamp against this test's clock
WITHIN = 1.0


def ages(bootstrap: str, group: str, topic: str) -> dict[str, str]:
    return kafka_metadata(bootstrap, group, topic, mode="LagSeconds", value="30")


def manifest_file(tmp_path: Path, metadata: dict[str, str], **spec: Any) -> Path:
    """A ScaledObject with one external trigger on ``metadata``, ``metricType: Value``."""
    trigger = {
        "type": "external",
        "metricType": "Value",
        "metadata": {"scalerAddress": "keda-queue-scaler.keda:9090", **metadata},
    }
    path = tmp_path / "scaledobject.yaml"
    path.write_text(manifest(scaled_object("orders-consumer", trigger, **spec)), encoding="utf-8")
    return path


async def test_check_json_shows_the_age_and_each_partitions_facts(
    serve, tmp_path, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    produced = await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 1, [ago(75)])
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0, (topic, 1): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    path = manifest_file(tmp_path, ages(kafka_bootstrap, group, topic), maxReplicaCount=10)
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    out = io.StringIO()

    status = await check.run(parser.parse_args([str(path), "--json"]), running.app.engine, {}, out)

    assert status == 0
    [row] = json.loads(out.getvalue())
    assert (row["metricName"], row["target"], row["active"], row["metricType"]) == (
        f"kafka-{topic}",
        30,
        True,
        "Value",
    )
    assert abs(row["value"] - age_of(produced[0][1])) < WITHIN
    assert abs(row["facts"][OLDEST_AGE] - row["value"]) < WITHIN
    per_partition = {item["partition"]: item for item in row["items"]}
    assert per_partition[0]["age_seconds"] == 0
    assert per_partition[1]["timestamp_ms"] == produced[0][1]
    assert not row["notes"]  # metricType Value: no warning about AverageValue


async def test_simulate_scales_the_replicas_by_age_over_value(
    serve, tmp_path, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(), kafka_group()
    await asyncio.to_thread(produce_at, kafka_bootstrap, topic, 0, [ago(75)])
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 0})
    running = await serve(cache_ttl=0.0, backend_timeout=5.0)
    path = manifest_file(tmp_path, ages(kafka_bootstrap, group, topic), maxReplicaCount=10)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(
        [str(path), "--address", running.address, "--speed", "100", "--duration", "20", "--json"]
    )
    out = io.StringIO()

    assert await command.run(args, {}, out, clock=CompressedClock(100)) == 0

    rows = json.loads(out.getvalue())
    changes = [
        (r["time"], r["event"], r["replicasBefore"], r["replicas"])
        for r in rows
        if r["replicasBefore"] != r["replicas"]
    ]
    # an age of about 75 s against 30: active at once; then each HPA sync (metricType Value)
    # multiplies the replicas by 75 / 30 while the age stays (ceil(1 x 2.5) = 3, then
    # ceil(3 x 2.5) = 8, limited to max(2 x 3, 4) = 6 at once)
    assert changes == [(0, "poll", 0, 1), (0, "hpa", 1, 3), (15, "hpa", 3, 6)]
    assert abs(rows[0]["metrics"][f"s0-kafka-{topic}"] - 75) < 5
