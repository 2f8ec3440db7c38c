"""``migrate`` then ``check`` against the real brokers: KEDA's built-in triggers, migrated, give
the values KEDA's built-in semantics give, read from the brokers' own views (LLEN, XLEN,
XPENDING and the group's lag, the log-end and committed offsets, the queue's message counts)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import redis
import redis.asyncio as aioredis
import yaml

from scaler.app import build_engine
from scaler.engine import Engine
from scaler.settings import Settings
from scaler.tools import check, migrate
from tests.integration.kafka_fixtures import (
    GroupFactory,
    KafkaSasl,
    TopicFactory,
    commit,
    committed,
    end_offsets,
    produce,
)
from tests.integration.rabbitmq_fixtures import AmqpPeer, QueueFactory, RabbitApi
from tests.integration.redis_topology import Address

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=3.0))
    yield engine
    await engine.aclose()


def scaled_object(*triggers: dict[str, Any], documents: tuple[dict[str, Any], ...] = ()) -> str:
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "consumer", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"name": "consumer"},
            "maxReplicaCount": 50,
            "triggers": list(triggers),
        },
    }
    return yaml.safe_dump_all([document, *documents], sort_keys=False)


def migrated(tmp_path: Path, text: str, *flags: str) -> tuple[Path, dict[str, Any]]:
    """Migrate ``text``; the migrated manifest's path and the JSON report (every built-in
    trigger converted)."""
    source = tmp_path / "keda.yaml"
    source.write_text(text, encoding="utf-8")
    target = tmp_path / "migrated.yaml"
    parser = argparse.ArgumentParser()
    migrate.add_arguments(parser)
    args = parser.parse_args([str(source), "--output", str(target), "--report", "json", *flags])
    err = io.StringIO()
    status = migrate.run(args, io.StringIO(), io.StringIO(), err)
    report: dict[str, Any] = json.loads(err.getvalue())
    assert status == 0, report
    assert {t["status"] for t in report["triggers"]} == {"converted"}
    return target, report


async def checked(
    engine: Engine, path: Path, environ: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser()
    check.add_arguments(parser)
    out = io.StringIO()
    args = parser.parse_args([str(path), "--json", "--timeout", "5"])
    status = await check.run(args, engine, environ or {}, out)
    rows: list[dict[str, Any]] = json.loads(out.getvalue())
    assert status == 0, rows
    return rows


def outcome(row: dict[str, Any]) -> tuple[str, float, float, bool, int]:
    return row["backend"], row["value"], row["target"], row["active"], row["desiredReplicas"]


# -- Redis ------------------------------------------------------------------------------------------


def redis_address(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert not parts.password, "the shared test Redis has no password"
    return {
        "address": f"{parts.hostname}:{parts.port}",
        "databaseIndex": parts.path.strip("/") or "0",
    }


async def test_redis_list(tmp_path: Path, engine: Engine, redis_url: str) -> None:
    key = f"kqs-migrate-{uuid.uuid4().hex}"
    client = aioredis.from_url(redis_url)
    try:
        await client.rpush(key, *[f"job-{i}" for i in range(13)])
        text = scaled_object(
            {
                "type": "redis",
                "metadata": {**redis_address(redis_url), "listName": key, "listLength": "5"},
            },
            {
                "type": "redis",
                "metadata": {
                    **redis_address(redis_url),
                    "listName": key,
                    "listLength": "5",
                    "activationListLength": "13",
                },
            },
        )
        path, _ = migrated(tmp_path, text)
        rows = await checked(engine, path)
        length = await client.llen(key)
    finally:
        await client.delete(key)
        await client.aclose()
    assert length == 13
    # KEDA: value LLEN, ceil(LLEN / listLength) replicas, active iff LLEN > activationListLength
    assert [outcome(r) for r in rows] == [
        ("redis", length, 5, True, math.ceil(length / 5)),
        ("redis", length, 5, False, 0),  # inactive at minReplicaCount 0: scaled to zero
    ]
    assert rows[0]["metricName"] == f"redis-{key}"


async def test_redis_stream(tmp_path: Path, engine: Engine, redis_url: str) -> None:
    stream, group = f"kqs-migrate-{uuid.uuid4().hex}", "workers"
    client = aioredis.from_url(redis_url)
    try:
        for i in range(9):
            await client.xadd(stream, {"n": str(i)})
        await client.xgroup_create(stream, group, id="0")
        await client.xreadgroup(group, "worker-1", {stream: ">"}, count=4)  # 4 pending, 5 lag
        base = {**redis_address(redis_url), "stream": stream}
        text = scaled_object(
            {"type": "redis-streams", "metadata": {**base, "streamLength": "2"}},
            {
                "type": "redis-streams",
                "metadata": {**base, "consumerGroup": group, "pendingEntriesCount": "3"},
            },
            {
                "type": "redis-streams",
                "metadata": {**base, "consumerGroup": group, "lagCount": "2"},
            },
        )
        path, _ = migrated(tmp_path, text, "--push")
        rows = await checked(engine, path)
        length = await client.xlen(stream)
        pending = (await client.xpending(stream, group))["pending"]
        (info,) = await client.xinfo_groups(stream)
    finally:
        await client.delete(stream)
        await client.aclose()
    assert (length, pending, info["lag"]) == (9, 4, 5)
    assert {r["metricName"] for r in rows} == {f"redis-streams-{stream}"}
    assert [outcome(r) for r in rows] == [
        ("redis-streams", length, 2, True, math.ceil(length / 2)),  # XLEN without a group
        ("redis-streams", pending, 3, True, math.ceil(pending / 3)),  # XPENDING with one
        ("redis-streams", info["lag"], 2, True, math.ceil(info["lag"] / 2)),  # the group's lag
    ]
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert {t["type"] for t in document["spec"]["triggers"]} == {"external-push"}


async def test_redis_cluster_and_sentinel_lists(
    tmp_path: Path,
    engine: Engine,
    cluster_seeds: str,
    redis_cluster_client: Any,
    redis_cluster_key: Any,
    redis_sentinels: list[Address],
    redis_sentinel_master: str,
    redis_sentinel_client: redis.Redis,
    redis_sentinel_key: Any,
) -> None:
    on_cluster, on_sentinel = redis_cluster_key("kqs-migrate"), redis_sentinel_key("kqs-migrate")
    redis_cluster_client.rpush(on_cluster, *range(11))
    redis_sentinel_client.rpush(on_sentinel, *range(6))
    text = scaled_object(
        {
            "type": "redis-cluster",
            "metadata": {"addresses": cluster_seeds, "listName": on_cluster, "listLength": "4"},
        },
        {
            "type": "redis-sentinel",
            "metadata": {
                "addresses": ",".join(f"{h}:{p}" for h, p in redis_sentinels),
                "sentinelMaster": redis_sentinel_master,
                "listName": on_sentinel,
                "listLength": "4",
            },
        },
    )
    path, _ = migrated(tmp_path, text)

    rows = await checked(engine, path)

    lengths = redis_cluster_client.llen(on_cluster), redis_sentinel_client.llen(on_sentinel)
    assert lengths == (11, 6)
    assert [outcome(r) for r in rows] == [
        ("redis-cluster", 11, 4, True, 3),
        ("redis-sentinel", 6, 4, True, 2),
    ]


# -- Kafka ------------------------------------------------------------------------------------------


async def test_kafka_lag_with_credentials_from_env(
    tmp_path: Path,
    engine: Engine,
    kafka_bootstrap: str,
    kafka_sasl: KafkaSasl,
    kafka_topic: TopicFactory,
    kafka_group: GroupFactory,
) -> None:
    topic, group = kafka_topic(partitions=3), kafka_group()
    for partition, count in enumerate((7, 5, 2)):
        await asyncio.to_thread(produce, kafka_bootstrap, topic, partition, count)
    # partition 2 never committed: with offsetResetPolicy latest, KEDA counts it as 1
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 2, (topic, 1): 5})
    auth = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "kafka-sasl", "namespace": "shop"},
        "spec": {
            "env": [
                {"parameter": "username", "name": "KAFKA_USER"},
                {"parameter": "password", "name": "KAFKA_PASSWORD"},
            ]
        },
    }
    trigger = {
        "type": "kafka",
        "metadata": {
            "bootstrapServers": kafka_sasl.bootstrap,
            "consumerGroup": group,
            "topic": topic,
            "lagThreshold": "2",
            "sasl": "plaintext",
        },
        "authenticationRef": {"name": "kafka-sasl"},
    }
    path, _ = migrated(tmp_path, scaled_object(trigger, documents=(auth,)))
    (migrated_trigger,) = yaml.safe_load_all(path.read_text(encoding="utf-8")).__next__()["spec"][
        "triggers"
    ]
    assert migrated_trigger["metadata"]["passwordFromEnv"] == "KAFKA_PASSWORD"
    environ = {"KAFKA_USER": kafka_sasl.plain_user, "KAFKA_PASSWORD": kafka_sasl.plain_password}

    (row,) = await checked(engine, path, environ)

    ends = await asyncio.to_thread(end_offsets, kafka_bootstrap, topic)
    commits = await asyncio.to_thread(committed, kafka_bootstrap, group)
    lag = sum(end - commits[tp] if tp in commits else 1 for tp, end in ends.items())
    assert (ends, commits) == (
        {(topic, 0): 7, (topic, 1): 5, (topic, 2): 2},
        {(topic, 0): 2, (topic, 1): 5},
    )
    assert lag == 6
    assert outcome(row) == ("kafka", lag, 2, True, 3)  # ceil(6 / 2) = 3, not above 3 partitions
    assert row["metricName"] == f"kafka-{topic}"


# -- RabbitMQ ---------------------------------------------------------------------------------------


def rabbit_host(url: str, with_credentials: bool = True) -> str:
    parts = urlsplit(url)
    login = f"{parts.username}:{parts.password}@" if with_credentials else ""
    return f"{parts.scheme}://{login}{parts.hostname}:{parts.port}/%2F"


async def test_rabbitmq_http_and_amqp(
    tmp_path: Path,
    engine: Engine,
    amqp_url: str,
    rabbitmq_http: str,
    rabbitmq_api: RabbitApi,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
) -> None:
    queue = await rabbit_queue("kqs-migrate")
    await amqp_peer.publish(queue, 11)
    await amqp_peer.take(queue, 3)  # 3 delivered, not acknowledged
    details = await rabbitmq_api.settled(queue, messages=11, messages_unacknowledged=3)
    text = scaled_object(
        {
            "type": "rabbitmq",
            "metadata": {
                "host": rabbit_host(rabbitmq_http),
                "queueName": queue.name,
                "mode": "QueueLength",
                "value": "4",
            },
        },
        {
            "type": "rabbitmq",
            "metadata": {
                "host": amqp_url,
                "queueName": queue.name,
                "mode": "QueueLength",
                "value": "4",
            },
        },
    )
    path, _ = migrated(tmp_path, text)

    rows = await checked(engine, path)

    assert (details["messages"], details["messages_ready"]) == (11, 8)
    # KEDA: over HTTP `messages` (ready + unacknowledged), over AMQP the ready ones only
    assert [outcome(r) for r in rows] == [
        ("rabbitmq", details["messages"], 4, True, 3),
        ("rabbitmq", details["messages_ready"], 4, True, 2),
    ]


async def test_rabbitmq_credentials_from_a_secret_through_the_profile_stub(
    tmp_path: Path,
    rabbitmq_http: str,
    rabbitmq_api: RabbitApi,
    rabbit_queue: QueueFactory,
    amqp_peer: AmqpPeer,
) -> None:
    queue = await rabbit_queue("kqs-migrate")
    await amqp_peer.publish(queue, 5)
    details = await rabbitmq_api.settled(queue, messages=5)
    auth = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "rabbit-login", "namespace": "shop"},
        "spec": {
            "secretTargetRef": [
                {"parameter": "username", "name": "rabbit", "key": "user"},
                {"parameter": "password", "name": "rabbit", "key": "password"},
            ]
        },
    }
    trigger = {
        "type": "rabbitmq",
        "metadata": {
            "host": rabbit_host(rabbitmq_http, with_credentials=False),
            "queueName": queue.name,
            "mode": "QueueLength",
            "value": "2",
        },
        "authenticationRef": {"name": "rabbit-login"},
    }
    stub = tmp_path / "profiles.yaml"
    path, report = migrated(
        tmp_path, scaled_object(trigger, documents=(auth,)), "--profiles-out", str(stub)
    )
    assert report["triggers"][0]["connection"] == "shop-rabbit-login"
    # the operator fills the placeholders in from the Secret
    parts = urlsplit(rabbitmq_http)
    filled = (
        stub.read_text(encoding="utf-8")
        .replace('# username: ""', f"username: {json.dumps(unquote(parts.username or ''))}")
        .replace('# password: ""', f"password: {json.dumps(unquote(parts.password or ''))}")
    )
    stub.write_text(filled, encoding="utf-8")
    engine = build_engine(Settings(cache_ttl=0.0, backend_timeout=3.0, profiles=str(stub)))
    try:
        (row,) = await checked(engine, path)
    finally:
        await engine.aclose()

    assert outcome(row) == ("rabbitmq", details["messages"], 2, True, 3)
