"""Several replicas behind one round-robin channel, as KEDA balances over a headless Service.

Three real ``keda-queue-scaler serve`` processes on different ports, one gRPC channel with the
``round_robin`` policy over the three addresses, a real Kafka group whose partition 0 stops
committing while partition 1 moves: with a shared state store (a test-owned ``redis-server``)
every replica gives the same ``excludePersistentLag`` value, a replica started after the
partition became persistent included; without one, that late replica disagrees (the warning of
docs/operations.md, "Running several replicas"). The store stopped mid-scenario: answers go on
from memory, with the warning and the metrics; restarted: shared again. A store behind a password
works, and a wrong one degrades, neither shown anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from bench.harness.ports import free_port
from bench.harness.scaler_process import scaler_process, wait_serving
from scaler.app import build_history
from scaler.backends.base import metric_name
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc
from scaler.settings import Settings
from scaler.state import FallbackHistory
from scaler.state_redis import PREFIX
from tests.conftest import ref
from tests.integration.kafka_fixtures import commit, committed, kafka_metadata, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PERSISTENT_AFTER = 2.0  # persistentLagSeconds of the trigger: short, not faked


@dataclass
class Replica:
    port: int
    metrics_port: int
    log: Path

    def sample(self, name: str) -> float | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as reply:
            text = reply.read().decode()
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def served(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as reply:
            text = reply.read().decode()
        counts = re.findall(
            r'^keda_queue_scaler_rpc_duration_seconds_count\{[^}]*method="GetMetrics"[^}]*\} (\S+)',
            text,
            re.MULTILINE,
        )
        return sum(float(c) for c in counts)


class Replicas:
    """Scaler processes started on demand, each on its own ports, all stopped at the end."""

    def __init__(self, tmp_path: Path, stack: contextlib.AsyncExitStack, **settings: str):
        self._tmp, self._stack, self._settings = tmp_path, stack, settings
        self.started: list[Replica] = []

    async def start(self) -> Replica:
        replica = Replica(free_port(), free_port(), self._tmp / f"scaler{len(self.started)}.log")
        await self._stack.enter_async_context(
            scaler_process(
                replica.log,
                replica.port,
                replica.metrics_port,
                SCALER_CACHE_TTL="0",
                SCALER_BACKEND_TIMEOUT="5",
                SCALER_REPLICAS="3",
                **self._settings,
            )
        )
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
            await wait_serving(channel)
        self.started.append(replica)
        return replica

    @contextlib.asynccontextmanager
    async def round_robin(self) -> AsyncIterator[pb_grpc.ExternalScalerAsyncStub]:
        """One channel over every replica, balanced per RPC as KEDA's client does."""
        target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in self.started)
        options = [("grpc.lb_policy_name", "round_robin")]
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            await channel.channel_ready()
            yield pb_grpc.ExternalScalerStub(channel)


async def answers(
    stub: pb_grpc.ExternalScalerAsyncStub, metadata: dict[str, str], n: int
) -> list[float]:
    """``n`` GetMetrics in a row through the round-robin channel."""
    values = []
    name = metric_name("kafka", metadata["topic"])
    for _ in range(n):
        reply = await stub.GetMetrics(
            pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName=name), timeout=10
        )
        values.append(reply.metricValues[0].metricValueFloat)
    return values


async def every_replica_answers(
    replicas: Replicas, stub: pb_grpc.ExternalScalerAsyncStub, metadata: dict[str, str]
) -> list[float]:
    """Two rounds over all replicas; asserts that each one answered its share."""
    before = [await asyncio.to_thread(r.served) for r in replicas.started]
    values = await answers(stub, metadata, 2 * len(replicas.started))
    after = [await asyncio.to_thread(r.served) for r in replicas.started]
    assert all(a - b >= 1 for a, b in zip(after, before, strict=True)), (before, after)
    return values


async def stuck_partition(kafka_bootstrap: str, topic: str, group: str) -> dict[str, str]:
    """Two partitions of 20 records, both committed at 5; the trigger's metadata."""
    for partition in (0, 1):
        await asyncio.to_thread(produce, kafka_bootstrap, topic, partition, 20)
    await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 0): 5, (topic, 1): 5})
    return kafka_metadata(
        kafka_bootstrap,
        group,
        topic,
        excludePersistentLag="true",
        persistentLagSeconds=str(PERSISTENT_AFTER),
        allowIdleConsumers="true",
    )


async def test_replicas_sharing_a_store_agree_through_persistence_and_an_outage(
    tmp_path, own_redis, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    metadata = await stuck_partition(kafka_bootstrap, topic, group)
    async with contextlib.AsyncExitStack() as stack:
        replicas = Replicas(tmp_path, stack, SCALER_STATE_URL=own_redis.url)
        await replicas.start()
        await replicas.start()
        async with replicas.round_robin() as stub:
            assert await every_replica_answers(replicas, stub, metadata) == [30.0] * 4
        await asyncio.sleep(PERSISTENT_AFTER + 0.5)
        # partition 1 moves, partition 0 does not: its lag (15) is persistent now
        await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 6})
        late = await replicas.start()  # never saw the group before
        async with replicas.round_robin() as stub:
            assert await every_replica_answers(replicas, stub, metadata) == [14.0] * 6

            # what the store holds: one key per partition, the broker's committed offsets,
            # an expiry of an hour
            async with aioredis.Redis.from_url(own_redis.url, decode_responses=True) as store:
                keys = sorted(await store.keys(PREFIX + "*"))
                assert len(keys) == 2
                values = sorted([int(str(await store.hget(k, "v"))) for k in keys])
                ttls = [await store.ttl(k) for k in keys]
            broker = await asyncio.to_thread(committed, kafka_bootstrap, group)
            assert values == sorted(broker.values()) == [5, 6]
            assert all(3000 < ttl <= 3600 for ttl in ttls)

            # the store goes away: the same answers from memory, never an error or a 0
            await own_redis.stop()
            await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 7})
            assert await every_replica_answers(replicas, stub, metadata) == [13.0] * 6
            assert await every_replica_answers(replicas, stub, metadata) == [13.0] * 6
            for replica in replicas.started:
                assert (
                    await asyncio.to_thread(replica.sample, "keda_queue_scaler_state_store_up") == 0
                )
                errors = await asyncio.to_thread(
                    replica.sample, "keda_queue_scaler_state_store_errors_total"
                )
                assert errors is not None
                assert errors >= 1
                warnings = replica.log.read_text().count("unavailable (")
                assert warnings == 1, replica.log.read_text()  # once per outage, not per read

            # back: shared again (the restarted store, empty, learns from the replicas' memory)
            await own_redis.start()
            await asyncio.sleep(2.5)  # the retry delay of a failing store
            await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 8})
            assert await every_replica_answers(replicas, stub, metadata) == [12.0] * 6
            for replica in replicas.started:
                assert (
                    await asyncio.to_thread(replica.sample, "keda_queue_scaler_state_store_up") == 1
                )
                assert "answers again" in replica.log.read_text()
            async with aioredis.Redis.from_url(own_redis.url, decode_responses=True) as store:
                assert len(await store.keys(PREFIX + "*")) == 2
        assert "without --state-url" not in late.log.read_text()


async def test_replicas_without_a_store_disagree(
    tmp_path, kafka_bootstrap, kafka_topic, kafka_group
) -> None:
    topic, group = kafka_topic(partitions=2), kafka_group()
    metadata = await stuck_partition(kafka_bootstrap, topic, group)
    async with contextlib.AsyncExitStack() as stack:
        replicas = Replicas(tmp_path, stack)
        await replicas.start()
        await replicas.start()
        async with replicas.round_robin() as stub:
            assert await every_replica_answers(replicas, stub, metadata) == [30.0] * 4
        await asyncio.sleep(PERSISTENT_AFTER + 0.5)
        await asyncio.to_thread(commit, kafka_bootstrap, group, {(topic, 1): 6})
        late = await replicas.start()
        async with replicas.round_robin() as stub:
            values = await every_replica_answers(replicas, stub, metadata)
        # the first two exclude partition 0's lag; the late one has just seen it: the metric
        # flaps with the round-robin
        assert sorted(set(values)) == [14.0, 29.0]
        assert values.count(29.0) == 2
        assert "3 replicas without --state-url" in late.log.read_text()


async def test_a_store_with_a_password_and_a_wrong_one_never_shows_it(own_redis, caplog) -> None:
    """``--state-url`` with a password: the store answers; with a wrong one, memory answers,
    and neither the log, the repr nor the warning shows the password."""
    async with aioredis.Redis.from_url(own_redis.url) as admin:
        await admin.config_set("requirepass", "s3cret-state-pw")
    good = f"redis://:s3cret-state-pw@127.0.0.1:{own_redis.port}/0"
    bad = f"redis://:wrong-state-pw@127.0.0.1:{own_redis.port}/0"
    with caplog.at_level("INFO"):
        shared = build_history(Settings(state_url=good))
        wrong = build_history(Settings(state_url=bad))
        assert isinstance(shared, FallbackHistory)
        assert isinstance(wrong, FallbackHistory)
        fact = [("password-test", 7)]
        assert await shared.unchanged_for(fact) == [0.0]
        await asyncio.sleep(1.1)
        assert 1.0 <= (await shared.unchanged_for(fact))[0] < 3.0  # the server's clock
        assert not shared.degraded
        assert await wrong.unchanged_for(fact) == [0.0]  # its own memory: never an error
        assert wrong.degraded
        await shared.aclose()
        await wrong.aclose()
    assert "unavailable (AuthenticationError)" in caplog.text
    for secret in ("s3cret-state-pw", "wrong-state-pw"):
        assert secret not in caplog.text
        assert secret not in repr(shared.store) + repr(wrong.store)
