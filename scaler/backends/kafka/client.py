"""The Kafka client of ``backend: kafka``: consumer-group offsets through kafka-python's admin
client, in as few requests as the protocol allows, and its errors mapped to ours.

One read of any number of groups and topics on a connection sends:

* one Metadata request for the named topics (topic-less mode: the topics the groups committed
  on, described after the commits are known),
* one OffsetFetch for the groups' committed offsets,
* one ListOffsets per partition leader for the log-end offsets,
* only for ``offsetResetPolicy: earliest`` and partitions never committed on, one more
  ListOffsets for their log-start offsets,
* and, only for ``mode: LagSeconds`` and partitions with lag, one Fetch per partition leader for
  the record at the committed offset (:mod:`scaler.backends.kafka.fetch`).

The raw offsets are the measurement's items; triggers apply their options to them. A group that
never committed, with no ``topic``, is NOT_FOUND rather than every topic in the cluster
(keda#8104). kafka-python is synchronous: every call runs in the backend's thread pool, never on
the event loop.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import kafka.errors as kerr
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.protocol.consumer.offsets import OffsetSpec

from scaler.backends.base import Batch, Client, Measurement
from scaler.backends.kafka.fetch import with_ages
from scaler.backends.kafka.oauth import ClientCredentials
from scaler.backends.kafka.trigger import NAME, ConsumerLag, KafkaConnection
from scaler.backends.kafka.workarounds import admin_client, all_refuse, sasl_rejection
from scaler.backends.tls import context_for
from scaler.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    TargetNotFound,
)

_UNKNOWN_TOPIC: Final = 3
#: per resource, its measurement or the error reading it raised
_Results = dict[ConsumerLag, Measurement | BaseException]


class KafkaClient(Client[ConsumerLag]):
    """One kafka-python admin client per connection identity, used from the backend's threads.

    :param connection: brokers, SASL, TLS
    :param timeout: kafka-python's own request timeout, in seconds
    :param executor: the backend's thread pool
    """

    def __init__(
        self, connection: KafkaConnection, timeout: float, executor: ThreadPoolExecutor
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._executor = executor
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def measure(self, resource: ConsumerLag) -> Measurement:
        results, _ = await self.measure_many([resource])
        outcome = results[resource]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def measure_many(self, resources: Sequence[ConsumerLag]) -> Batch[ConsumerLag]:
        """Every watched group and topic of this connection: one request of each kind."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._measure, list(resources))

    def _measure(self, resources: list[ConsumerLag]) -> tuple[_Results, int]:
        try:
            admin = self._client()
            try:
                return self._read_many(admin, resources)
            except kerr.KafkaError as err:
                if len(resources) == 1 or _connection_error(err):
                    raise
            # one group's error (e.g. not authorized) must not fail the others: read apart
            results: _Results = {}
            requests = 0
            for resource in resources:
                try:
                    outcome, cost = self._read_many(admin, [resource])
                    results.update(outcome)
                    requests += cost
                except kerr.KafkaError as err:
                    results[resource] = self._translate(err, resource)
            return results, requests
        except kerr.KafkaError as err:
            raise self._translate(err, resources[0]) from None
        except (OSError, ssl.SSLError) as err:
            raise BackendUnavailable(f"kafka {self._connection.label}: {err}") from None

    def _client(self) -> KafkaAdminClient:
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"kafka {self._connection.label}: client closed")
            if self._admin is None:
                connection = self._connection
                if all_refuse(connection.bootstrap_servers, self._timeout):
                    raise BackendUnavailable(
                        f"kafka {connection.label}: every bootstrap server refused the connection"
                    )
                context = context_for(NAME, connection) if connection.tls else None
                rejection = sasl_rejection(connection, self._timeout, context)
                if rejection is not None:
                    raise BackendAuthError(
                        f"kafka {connection.label}: SASL login rejected: {rejection}"
                    )
                self._admin = admin_client(_config(connection, self._timeout, context))
            return self._admin

    def _read_many(
        self, admin: KafkaAdminClient, resources: list[ConsumerLag]
    ) -> tuple[_Results, int]:
        """Offsets of every resource with one request of each kind (Metadata, OffsetFetch for
        every group, ListOffsets per leader); returns the results and the requests sent."""
        label = self._connection.label
        results: _Results = {}
        requests = 0
        partitions_of: dict[str, list[TopicPartition]] = {}
        leaders: dict[TopicPartition, int] = {}
        missing: set[str] = set()
        named = sorted({r.topic for r in resources if r.topic})
        if named:
            partitions_of, missing = _describe(admin, named, leaders)
            requests += 1
        specs: dict[str, set[TopicPartition] | None] = {}
        for r in resources:
            if r.topic in missing:
                results[r] = TargetNotFound(f"kafka {label}: topic {r.topic!r} does not exist")
            elif r.topic is None:
                specs[r.group] = None
            elif (spec := specs.setdefault(r.group, set())) is not None:
                spec.update(partitions_of[r.topic])
        committed: dict[str, dict[TopicPartition, int]] = {}
        if specs:
            fetched = admin.list_group_offsets(
                {g: sorted(p) if p is not None else None for g, p in specs.items()}
            )
            requests += 1
            committed = {g: _offsets(fetched.get(g, {})) for g in specs}
        topicless = [r for r in resources if r.topic is None]
        unknown = sorted(
            {tp.topic for r in topicless for tp in committed[r.group]} - set(partitions_of)
        )
        if unknown:
            more, gone = _describe(admin, unknown, leaders)  # a deleted topic keeps old commits
            partitions_of.update(more)
            missing |= gone
            requests += 1
        wanted: dict[ConsumerLag, list[TopicPartition]] = {}
        for r in resources:
            if r in results:
                continue
            if r.topic is not None:
                wanted[r] = partitions_of[r.topic]
                continue
            topics = sorted({tp.topic for tp in committed[r.group]} - missing)
            if not topics:
                results[r] = TargetNotFound(
                    f"kafka {label}: consumer group {r.group!r} has no committed offsets, so its "
                    "topics are unknown; set topic to scale it from zero"
                )
                continue
            wanted[r] = [tp for t in topics for tp in partitions_of[t]]
        every = sorted({tp for parts in wanted.values() for tp in parts})
        ends: dict[TopicPartition, int] = {}
        if every:
            ends = _offsets(admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in every}))
            requests += 2  # kafka-python looks the leaders up (Metadata) before ListOffsets
        starts: dict[TopicPartition, int] = {}
        uncommitted = sorted(
            {
                tp
                for r, parts in wanted.items()
                if r.with_log_start
                for tp in parts
                if committed[r.group].get(tp, -1) < 0
            }
        )
        if uncommitted:
            starts = _offsets(
                admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in uncommitted})
            )
            requests += 2
        measured = {
            r: _measurement(parts, committed[r.group], ends, starts) for r, parts in wanted.items()
        }
        aged, cost = with_ages(admin, measured, leaders, label)
        results.update(aged)
        return results, requests + cost

    def _translate(self, err: kerr.KafkaError, resource: ConsumerLag) -> BackendError:
        where = f"kafka {self._connection.label} group {resource.group!r}"
        detail = f"{type(err).__name__}: {err}"
        if self._connection.password:
            detail = detail.replace(self._connection.password, "***")
        message = f"{where}: {detail}"
        if isinstance(err, kerr.SaslAuthenticationFailedError | kerr.UnsupportedSaslMechanismError):
            return BackendAuthError(message)
        if isinstance(err, kerr.AuthorizationError):
            return BackendPermissionDenied(message)
        if isinstance(err, kerr.UnknownTopicOrPartitionError | kerr.GroupIdNotFoundError):
            return TargetNotFound(message)
        if isinstance(err, kerr.KafkaTimeoutError | kerr.RequestTimedOutError):
            return BackendTimeout(message)
        if _connection_error(err):
            return BackendUnavailable(message)
        return BackendError(message)

    async def aclose(self) -> None:
        # in the pool: a bootstrap in progress holds the lock for up to the timeout
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()


def _measurement(
    partitions: list[TopicPartition],
    committed: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    starts: Mapping[TopicPartition, int],
) -> Measurement:
    """The raw offsets of one resource: an item per partition, the committed lag in total."""
    items: list[dict[str, float | str]] = []
    total = 0
    for tp in partitions:
        offset = committed.get(tp, -1)
        end = ends.get(tp, 0)
        items.append(
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "committed": offset,
                "log_end": end,
                "log_start": starts.get(tp, -1),
            }
        )
        total += max(end - offset, 0) if offset >= 0 else 0
    return Measurement(float(total), {"partitions": len(items)}, tuple(items))


def _describe(
    admin: KafkaAdminClient, topics: Sequence[str], leaders: dict[TopicPartition, int]
) -> tuple[dict[str, list[TopicPartition]], set[str]]:
    """Partitions of each topic, and the topics that do not exist; adds each partition's leader
    to ``leaders`` (where ``mode: LagSeconds`` fetches records)."""
    described: list[dict[str, Any]] = admin.describe_topics(list(topics))
    partitions: dict[str, list[TopicPartition]] = {}
    missing: set[str] = set()
    for topic in described:
        name = str(topic["name"])
        if topic["error_code"] == _UNKNOWN_TOPIC:
            missing.add(name)
        elif topic["error_code"]:
            raise kerr.for_code(topic["error_code"])(f"describing topic {name!r}")
        else:
            for p in topic["partitions"]:
                leaders[TopicPartition(name, p["partition_index"])] = int(p["leader_id"])
            partitions[name] = sorted(
                TopicPartition(name, p["partition_index"]) for p in topic["partitions"]
            )
    return partitions, missing


def _connection_error(err: kerr.KafkaError) -> bool:
    return isinstance(err, kerr.RetriableError | kerr.BrokerNotAvailableError)


def _offsets(result: Mapping[Any, Any]) -> dict[TopicPartition, int]:
    """``{TopicPartition: OffsetAndMetadata | OffsetAndTimestamp}`` -> ``{TopicPartition: int}``."""
    return {tp: int(value.offset) for tp, value in result.items()}


def _config(
    connection: KafkaConnection, timeout: float, context: ssl.SSLContext | None
) -> dict[str, Any]:
    """kafka-python's admin client settings for a connection identity."""
    mechanism = connection.mechanism
    if connection.tls:
        protocol = "SASL_SSL" if mechanism else "SSL"
    else:
        protocol = "SASL_PLAINTEXT" if mechanism else "PLAINTEXT"
    timeout_ms = max(int(timeout * 1000), 100)
    config: dict[str, Any] = {
        "bootstrap_servers": list(connection.bootstrap_servers),
        "client_id": "keda-queue-scaler",
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
        "reconnect_backoff_max_ms": 1000,
        # topics and partitions come and go; the default 5 minutes would hide new leaders
        "metadata_max_age_ms": 30_000,
        "security_protocol": protocol,
    }
    if mechanism == "OAUTHBEARER":
        config["sasl_mechanism"] = mechanism
        config["sasl_oauth_token_provider"] = ClientCredentials(connection, timeout)
    elif mechanism:
        config["sasl_mechanism"] = mechanism
        config["sasl_plain_username"] = connection.username
        config["sasl_plain_password"] = connection.password
    if context is not None:
        config["ssl_context"] = context
        config["ssl_check_hostname"] = not connection.unsafe_ssl
    return config
