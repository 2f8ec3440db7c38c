"""Kafka lag evaluation cost: time and broker requests for one group over many partitions.

    python -m bench.kafka_lag [--topics 10] [--partitions 100] [--evaluations 30]

Needs the test broker (``make brokers``; ``SCALER_TEST_KAFKA_BOOTSTRAP``, default
127.0.0.1:19092). Creates ``topics x partitions`` partitions, produces one record to each,
commits offsets for a group on every other partition, then evaluates the group through the
scaler's engine with no cache (every evaluation reads the broker) and counts the requests the
admin client sends, by API, with a counter wrapped around kafka-python's send. ``mode: Lag`` and
``mode: LagSeconds`` are measured side by side over every topic of the group: with the default
``offsetResetPolicy: latest`` the committed half of the partitions has lag (one waiting record
each), with ``earliest`` every partition has (the uncommitted half from the log start). Prints
a table and writes ``bench/results/kafka_lag.json``. Topics are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from bench.harness.brokers import address
from bench.harness.paths import RESULTS
from scaler.app import build_engine
from scaler.backends.kafka.client import KafkaClient
from scaler.settings import Settings


def prepare(bootstrap: str, topics: list[str], partitions: int, group: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    try:
        admin.create_topics(
            {t: {"num_partitions": partitions, "replication_factor": 1} for t in topics},
            timeout_ms=120_000,
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for topic in topics:
        for partition in range(partitions):
            producer.send(topic, b"x", partition=partition)
    producer.flush(120)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    offsets = {
        TopicPartition(t, p): OffsetAndMetadata(0, "", -1)
        for t in topics
        for p in range(0, partitions, 2)
    }
    consumer.assign(list(offsets))
    consumer.commit(offsets)
    consumer.close(autocommit=False)


def cleanup(bootstrap: str, topics: list[str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


async def evaluate(bootstrap: str, topics: list[str], group: str, rounds: int) -> dict[str, Any]:
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=30.0))
    metadata = {"backend": "kafka", "bootstrapServers": bootstrap, "consumerGroup": group}
    ages = {"mode": "LagSeconds", "value": "30"}
    earliest = {"offsetResetPolicy": "earliest"}
    cases: list[tuple[str, dict[str, str]]] = [
        ("topic, Lag", {"topic": topics[0], "allowIdleConsumers": "true"}),
        ("all topics, Lag", {"allowIdleConsumers": "true"}),
        ("all topics, LagSeconds", ages),
        ("all topics, Lag, earliest", {"allowIdleConsumers": "true", **earliest}),
        ("all topics, LagSeconds, earliest", {**ages, **earliest}),
    ]
    results: dict[str, Any] = {}
    for mode, extra in cases:
        parsed = engine.parse({**metadata, **extra})
        first = await engine.evaluate(parsed)  # connects and bootstraps
        client = engine.pool.get(parsed.key.connection)
        assert isinstance(client, KafkaClient)
        requests: Counter[str] = Counter()
        manager = client._admin._manager  # type: ignore[union-attr]  # bench-only instrumentation
        send = manager.send

        async def counting_send(
            request: Any,
            *args: Any,
            _counts: Counter[str] = requests,
            _send: Any = send,
            **kwargs: Any,
        ) -> Any:
            _counts[type(request).__name__.removesuffix("Request")] += 1
            return await _send(request, *args, **kwargs)

        manager.send = counting_send
        durations = []
        for _ in range(rounds):
            start = time.perf_counter()
            evaluation = await engine.evaluate(parsed)
            durations.append(time.perf_counter() - start)
        manager.send = send
        measurement = await engine.measure(parsed)
        results[mode] = {
            "partitions": len(measurement.items),
            # LagSeconds: the partitions whose waiting record was fetched
            "records_fetched": sum("record_offset" in i for i in measurement.items),
            "value": evaluation.value,
            "first_evaluation_value": first.value,
            "evaluation_ms_p50": round(statistics.median(durations) * 1000, 2),
            "evaluation_ms_p99": round(_p99(durations) * 1000, 2),
            "evaluation_ms_max": round(max(durations) * 1000, 2),
            "requests_per_evaluation": {k: v / rounds for k, v in sorted(requests.items())},
        }
    await engine.aclose()
    return results


def _p99(durations: list[float]) -> float:
    """The 99th percentile, interpolated between samples (the largest one below 100 samples)."""
    if len(durations) < 2:
        return durations[0]
    return statistics.quantiles(durations, n=100, method="inclusive")[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=address("SCALER_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--evaluations", type=int, default=30)
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:8]
    topics = [f"kqs-bench-{suffix}-{i}" for i in range(args.topics)]
    group = f"kqs-bench-{suffix}"
    prepare(args.bootstrap, topics, args.partitions, group)
    try:
        results = asyncio.run(evaluate(args.bootstrap, topics, group, args.evaluations))
    finally:
        cleanup(args.bootstrap, topics)
    print(
        f"Kafka lag evaluation, {args.topics} topics x {args.partitions} partitions, "
        f"{args.evaluations} rounds, no cache"
    )
    for mode, r in results.items():
        print(
            f"  {mode:<33} partitions={r['partitions']:<5} fetched={r['records_fetched']:<5} "
            f"value={r['value']:<8.4g} p50={r['evaluation_ms_p50']} ms "
            f"p99={r['evaluation_ms_p99']} ms max={r['evaluation_ms_max']} ms "
            f"requests/evaluation={r['requests_per_evaluation']}"
        )
    out = RESULTS / "kafka_lag.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"  written to {out}")


if __name__ == "__main__":
    main()
