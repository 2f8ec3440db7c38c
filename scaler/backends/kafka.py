"""The ``kafka`` backend: consumer-group lag with the parameters and semantics of KEDA's trigger.

One evaluation reads, through kafka-python's admin client:

* the topic's partitions (one Metadata request; topic-less mode: the topics the group committed on),
* the group's committed offsets (one OffsetFetch),
* the log-end offsets (one ListOffsets per partition leader),
* the log-start offsets, only for a trigger with ``offsetResetPolicy: earliest`` and only for
  partitions the group never committed on.

Raw offsets are the :class:`~scaler.backends.base.Measurement`; :meth:`KafkaTrigger.evaluate`
turns them into the metric with the trigger's own options (reset policy, persistent lag,
partition limitation, caps), so one read serves every ScaledObject on the group and topic.

Differences from KEDA, on purpose (README, "Differences from KEDA's kafka trigger"): lag is
clamped at 0; ``earliest`` with no commit counts log-end minus log-start (keda#7936); the
partition cap compares ``ceil(lag / threshold)``, not the integer division (off-by-one); a group
that never committed, with no ``topic``, is an error rather than every topic in the cluster
(keda#8104); persistent lag means "committed offset unchanged for ``persistentLagSeconds``"
rather than "unchanged since this ScaledObject's previous poll", because reads are shared.

kafka-python is synchronous: every call runs in this backend's small thread pool, never on the
event loop. This is the only module that imports kafka-python.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import kafka.errors as kerr
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.net.sasl.oauth import AbstractTokenProvider
from kafka.net.sasl.plain import SaslMechanismPlain
from kafka.net.sasl.scram import SaslMechanismScram
from kafka.protocol.consumer.offsets import OffsetSpec

from scaler.backends.base import BackendClient, Evaluation, Measurement, metric_name
from scaler.backends.tls import context_for
from scaler.errors import (
    BackendAuthError,
    BackendError,
    BackendPermissionDenied,
    BackendTimeout,
    BackendUnavailable,
    MetadataError,
    TargetNotFound,
)
from scaler.metadata import (
    MetadataReader,
    boolean,
    host_port,
    integer,
    non_negative,
    number,
    positive,
    quote,
    resource_name,
    text,
)

NAME: Final = "kafka"
#: where and how to connect: what a connection profile supplies
CONNECTION_KEYS: Final = frozenset(
    {
        "bootstrapServers",
        "sasl",
        "username",
        "password",
        "tls",
        "unsafeSsl",
        "ca",
        "cert",
        "key",
        "keyPassword",
        "oauthTokenEndpointUri",
        "scopes",
        "oauthExtensions",
    }
)
log = logging.getLogger(__name__)
# kafka-python logs its whole configuration, SASL password included, at DEBUG, and every lost
# connection at ERROR; its failures reach users as our errors, so it stays quiet.
logging.getLogger("kafka").setLevel(logging.CRITICAL)

_SASL: Final = {
    "none": None,
    "plaintext": "PLAIN",
    "scram_sha256": "SCRAM-SHA-256",
    "scram_sha512": "SCRAM-SHA-512",
    "oauthbearer": "OAUTHBEARER",
}
_PARTITION_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_UNKNOWN_TOPIC: Final = 3
#: offset history entries unseen for this long are forgotten
_HISTORY_TTL: Final = 3600.0


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Identity of one admin client: brokers, SASL and TLS settings (secrets hidden from repr)."""

    bootstrap_servers: tuple[str, ...]
    sasl: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    unsafe_ssl: bool = False
    ca: str | None = field(default=None, repr=False)
    cert: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    key_password: str | None = field(default=None, repr=False)
    oauth_token_endpoint: str | None = None
    oauth_scopes: tuple[str, ...] = ()
    oauth_extensions: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return ",".join(self.bootstrap_servers)


@dataclass(frozen=True, slots=True)
class ConsumerLag:
    """What is read: a group's offsets on one topic, or on every topic it committed on."""

    group: str
    topic: str | None
    #: read log-start offsets of uncommitted partitions (``offsetResetPolicy: earliest``)
    with_log_start: bool = False


@dataclass(frozen=True, slots=True)
class KafkaTrigger:
    """A parsed ``backend: kafka`` trigger: KEDA's ``kafka`` parameters."""

    connection: KafkaConnection
    resource: ConsumerLag
    lag_threshold: float = 10.0
    activation_lag_threshold: float = 0.0
    offset_reset_policy: str = "latest"
    allow_idle_consumers: bool = False
    exclude_persistent_lag: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    limit_to_partitions_with_lag: bool = False
    ensure_even_distribution: bool = False
    partition_limitation: frozenset[int] | None = None
    persistent_lag_seconds: float = 30.0
    backend: str = NAME

    @property
    def target(self) -> float:
        return self.lag_threshold

    def metric_name(self) -> str:
        if self.resource.topic:
            return metric_name("kafka", self.resource.topic)
        return metric_name("kafka", self.resource.group, "topics")

    def resource_label(self) -> str:
        return f"{self.connection.label}/{self.resource.group}/{self.resource.topic or '*'}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        """KEDA's lag arithmetic (kafka_scaler.go), with the differences in the module docstring."""
        partitions = list(measurement.items)
        if self.partition_limitation is not None and self.resource.topic:
            partitions = [p for p in partitions if int(p["partition"]) in self.partition_limitation]
            if not partitions:
                raise MetadataError(
                    [
                        "partitionLimitation: no partition of topic "
                        f"{self.resource.topic!r} is in the limitation"
                    ]
                )
        total_lag = 0.0
        total_with_persistent = 0.0
        with_lag = 0
        for p in partitions:
            lag, lag_with_persistent = self._partition_lag(p)
            total_lag += lag
            total_with_persistent += lag_with_persistent
            with_lag += lag > 0
        capped = not self.allow_idle_consumers or (
            self.limit_to_partitions_with_lag or self.ensure_even_distribution
        )
        if capped:
            bound = with_lag if self.limit_to_partitions_with_lag else len(partitions)
            if self.ensure_even_distribution:
                total_lag = self._even(total_lag, len(partitions))
            # KEDA tests int(lag / threshold) > bound; ceil() is what the HPA applies, so a lag
            # between bound and bound+1 thresholds would otherwise give bound+1 replicas.
            if math.ceil(total_lag / self.lag_threshold) > bound:
                total_lag = bound * self.lag_threshold
        return Evaluation(total_lag, total_with_persistent > self.activation_lag_threshold)

    def _partition_lag(self, p: Mapping[str, float | str]) -> tuple[float, float]:
        committed = float(p["committed"])
        log_end = float(p["log_end"])
        if committed < 0:
            if self.scale_to_zero_on_invalid_offset:
                return 0.0, 0.0
            if self.offset_reset_policy == "latest":
                return 1.0, 1.0  # KEDA: keep one consumer so the group can commit
            # earliest: what a new consumer would read, not the absolute log-end (keda#7936)
            lag = max(log_end - float(p["log_start"]), 0.0)
            return lag, lag
        lag = max(log_end - committed, 0.0)
        persistent = (
            self.exclude_persistent_lag
            and lag > 0
            and float(p["unchanged_for"]) >= self.persistent_lag_seconds
        )
        return (0.0 if persistent else lag), lag

    def _even(self, lag: float, partitions: int) -> float:
        # smallest divisor of the partition count whose replicas can take the lag (KEDA)
        for factor in range(1, partitions + 1):
            if partitions % factor == 0 and factor * self.lag_threshold >= lag:
                return factor * self.lag_threshold
        return partitions * self.lag_threshold


def _partition_set(reader: MetadataReader, raw: str) -> frozenset[int] | None:
    partitions: set[int] = set()
    for part in raw.split(","):
        match = _PARTITION_RANGE.match(part)
        if match is None:
            reader.problem(
                f"partitionLimitation: {quote(part.strip())} is not a partition or a range a-b"
            )
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            reader.problem(f"partitionLimitation: range {quote(part.strip())} is empty")
            return None
        partitions.update(range(low, high + 1))
    return frozenset(partitions)


def _servers(reader: MetadataReader, raw: str) -> tuple[str, ...]:
    servers = tuple(s.strip() for s in raw.split(",") if s.strip())
    for server in servers:
        if host_port(server) is None:
            reader.problem(f"bootstrapServers: {quote(server)} is not host:port")
    return servers


def parse_metadata(raw: Mapping[str, str]) -> KafkaTrigger:
    """Parse ``backend: kafka`` metadata with KEDA's names, defaults and rules; all problems."""
    r = MetadataReader(raw, NAME)
    servers_raw = r.get("bootstrapServers", text)
    servers = _servers(r, servers_raw) if servers_raw else ()
    group = r.get("consumerGroup", resource_name)
    topic = r.get("topic", resource_name, default=None)
    lag_threshold = r.get("lagThreshold", integer, default=10, check=positive)
    activation = r.get("activationLagThreshold", integer, default=0, check=non_negative)
    policy = r.get("offsetResetPolicy", text, default="latest", choices=("latest", "earliest"))
    allow_idle = r.get("allowIdleConsumers", boolean, default=False)
    exclude_persistent = r.get("excludePersistentLag", boolean, default=False)
    zero_on_invalid = r.get("scaleToZeroOnInvalidOffset", boolean, default=False)
    limit_to_lag = r.get("limitToPartitionsWithLag", boolean, default=False)
    even = r.get("ensureEvenDistributionOfPartitions", boolean, default=False)
    persistent_seconds = r.get("persistentLagSeconds", number, default=30.0, check=non_negative)
    limitation_raw = r.get("partitionLimitation", text, default=None)
    limitation = _partition_set(r, limitation_raw) if limitation_raw else None

    if limit_to_lag and allow_idle:
        r.problem("limitToPartitionsWithLag and allowIdleConsumers cannot both be true")
    if limit_to_lag and even:
        r.problem(
            "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot both be true"
        )
    if limit_to_lag and not topic:
        r.problem("limitToPartitionsWithLag requires topic")
    if even and not topic:
        r.problem("ensureEvenDistributionOfPartitions requires topic")
    if limitation is not None and not topic:
        limitation = None  # KEDA ignores it without a topic
        log.debug("partitionLimitation ignored: no topic")

    sasl = r.get("sasl", str.lower, default="none", choices=(*_SASL, "gssapi"))
    if sasl == "gssapi":
        r.problem("sasl: 'gssapi' is not supported by this scaler (kafka-python needs Kerberos)")
    username = r.get("username", text, default=None)
    password = r.get("password", text, default=None, secret=True)
    if sasl in ("plaintext", "scram_sha256", "scram_sha512", "oauthbearer"):
        if not username:
            r.problem(f"username is required with sasl {sasl}")
        if not password:
            r.problem(f"password is required with sasl {sasl}")
    token_endpoint = r.get("oauthTokenEndpointUri", text, default=None)
    if sasl == "oauthbearer" and not token_endpoint:
        r.problem("oauthTokenEndpointUri is required with sasl oauthbearer")
    scopes = r.get("scopes", text, default="")
    extensions_raw = r.get("oauthExtensions", text, default="")
    extensions: list[tuple[str, str]] = []
    for pair in filter(None, (p.strip() for p in extensions_raw.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            r.problem("oauthExtensions: an entry is not key=value")
        extensions.append((name.strip(), value.strip()))

    tls = r.get("tls", text, default="disable", choices=("enable", "disable")) == "enable"
    unsafe = r.get("unsafeSsl", boolean, default=False)
    ca = r.get("ca", text, default=None, secret=True)
    cert = r.get("cert", text, default=None, secret=True)
    key = r.get("key", text, default=None, secret=True)
    key_password = r.get("keyPassword", text, default=None, secret=True)
    if bool(cert) != bool(key):
        r.problem("cert and key must be given together")
    r.finish()
    assert group is not None
    return KafkaTrigger(
        connection=KafkaConnection(
            bootstrap_servers=servers,
            sasl=sasl,
            username=username,
            password=password,
            tls=tls,
            unsafe_ssl=unsafe,
            ca=ca,
            cert=cert,
            key=key,
            key_password=key_password,
            oauth_token_endpoint=token_endpoint,
            oauth_scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
            oauth_extensions=tuple(extensions),
        ),
        resource=ConsumerLag(group, topic, with_log_start=policy == "earliest"),
        lag_threshold=float(lag_threshold),
        activation_lag_threshold=float(activation),
        offset_reset_policy=policy,
        allow_idle_consumers=allow_idle,
        exclude_persistent_lag=exclude_persistent,
        scale_to_zero_on_invalid_offset=zero_on_invalid,
        limit_to_partitions_with_lag=limit_to_lag,
        ensure_even_distribution=even,
        partition_limitation=limitation,
        persistent_lag_seconds=persistent_seconds,
    )


class _ClientCredentials(AbstractTokenProvider):  # type: ignore[misc]
    """OAuth 2 client-credentials tokens for SASL/OAUTHBEARER (KEDA's ``oauthbearer``)."""

    def __init__(self, connection: KafkaConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() > self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + max(lifetime - 30.0, lifetime / 2)
            return self._token

    def extensions(self) -> dict[str, str]:
        return dict(self._connection.oauth_extensions)

    def _fetch(self) -> tuple[str, float]:
        c = self._connection
        assert c.oauth_token_endpoint is not None
        form = {"grant_type": "client_credentials"}
        if c.oauth_scopes:
            form["scope"] = " ".join(c.oauth_scopes)
        basic = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the URI is the user's token endpoint
            c.oauth_token_endpoint,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except (OSError, ValueError) as err:
            raise kerr.SaslAuthenticationFailedError(
                f"OAuth token request failed: {type(err).__name__}"
            ) from None
        return str(body["access_token"]), float(body.get("expires_in", 300))


class KafkaClient:
    """One kafka-python admin client per connection identity, used from the backend's threads.

    :param connection: brokers, SASL, TLS
    :param timeout: kafka-python's own request timeout, in seconds
    :param executor: the backend's thread pool
    :param history: the backend's committed-offset history (persistent lag)
    """

    def __init__(
        self,
        connection: KafkaConnection,
        timeout: float,
        executor: ThreadPoolExecutor,
        history: _OffsetHistory,
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._executor = executor
        self._history = history
        self._admin: KafkaAdminClient | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def measure(self, resource: Hashable) -> Measurement:
        assert isinstance(resource, ConsumerLag)
        loop = asyncio.get_running_loop()
        results, _ = await loop.run_in_executor(self._executor, self._measure, [resource])
        outcome = results[resource]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def measure_many(
        self, resources: Sequence[Hashable]
    ) -> tuple[dict[Hashable, Measurement | BaseException], int]:
        """Every watched group and topic of this connection: one request of each kind."""
        lags = [r for r in resources if isinstance(r, ConsumerLag)]
        loop = asyncio.get_running_loop()
        results, requests = await loop.run_in_executor(self._executor, self._measure, lags)
        batch: dict[Hashable, Measurement | BaseException] = {}
        for resource, outcome in results.items():
            batch[resource] = outcome
        return batch, requests

    def _measure(
        self, resources: list[ConsumerLag]
    ) -> tuple[dict[ConsumerLag, Measurement | BaseException], int]:
        try:
            admin = self._client()
            try:
                return self._read_many(admin, resources)
            except kerr.KafkaError as err:
                if len(resources) == 1 or _connection_error(err):
                    raise
            # one group's error (e.g. not authorized) must not fail the others: read apart
            results: dict[ConsumerLag, Measurement | BaseException] = {}
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
                if _all_refuse(self._connection.bootstrap_servers, self._timeout):
                    raise BackendUnavailable(
                        f"kafka {self._connection.label}: every bootstrap server refused the "
                        "connection"
                    )
                rejection = _sasl_rejection(self._connection, self._timeout)
                if rejection is not None:
                    raise BackendAuthError(
                        f"kafka {self._connection.label}: SASL login rejected: {rejection}"
                    )
                self._admin = _admin_client(_client_config(self._connection, self._timeout))
            return self._admin

    def _read_many(
        self, admin: KafkaAdminClient, resources: list[ConsumerLag]
    ) -> tuple[dict[ConsumerLag, Measurement | BaseException], int]:
        """Offsets of every resource with one request of each kind (Metadata, OffsetFetch for
        every group, ListOffsets per leader); returns the results and the requests sent."""
        label = self._connection.label
        results: dict[ConsumerLag, Measurement | BaseException] = {}
        requests = 0
        partitions_of: dict[str, list[TopicPartition]] = {}
        missing: set[str] = set()
        named = sorted({r.topic for r in resources if r.topic})
        if named:
            partitions_of, missing = self._describe(admin, named)
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
            more, gone = self._describe(admin, unknown)  # a deleted topic keeps old commits
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
        for r, parts in wanted.items():
            results[r] = self._measurement(r.group, parts, committed[r.group], ends, starts)
        return results, requests

    def _measurement(
        self,
        group: str,
        partitions: list[TopicPartition],
        committed: Mapping[TopicPartition, int],
        ends: Mapping[TopicPartition, int],
        starts: Mapping[TopicPartition, int],
    ) -> Measurement:
        now = time.monotonic()
        items: list[dict[str, float | str]] = []
        total = 0
        for tp in partitions:
            offset = committed.get(tp, -1)
            end = ends.get(tp, 0)
            unchanged = self._history.unchanged_for(
                (self._connection, group, tp.topic, tp.partition), offset, now
            )
            items.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "committed": offset,
                    "log_end": end,
                    "log_start": starts.get(tp, -1),
                    "unchanged_for": unchanged,
                }
            )
            total += max(end - offset, 0) if offset >= 0 else 0
        return Measurement(float(total), {"partitions": len(items)}, tuple(items))

    def _describe(
        self, admin: KafkaAdminClient, topics: Sequence[str]
    ) -> tuple[dict[str, list[TopicPartition]], set[str]]:
        """Partitions of each topic, and the topics that do not exist."""
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
                partitions[name] = sorted(
                    TopicPartition(name, p["partition_index"]) for p in topic["partitions"]
                )
        return partitions, missing

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
        if isinstance(err, kerr.RetriableError | kerr.BrokerNotAvailableError):
            return BackendUnavailable(message)
        return BackendError(message)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()


def _started_pool(threads: int) -> ThreadPoolExecutor:
    """A thread pool with all its threads started now rather than on demand.

    A pool that grows under load (blocked reads during an outage) and never shrinks would make
    the thread count useless for spotting a leak; started in full, it stays constant.
    """
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kafka")
    barrier = threading.Barrier(threads)  # each worker waits for the others: one thread each
    for future in [pool.submit(barrier.wait) for _ in range(threads)]:
        future.result()
    return pool


def _admin_client(config: Mapping[str, Any]) -> KafkaAdminClient:
    """A KafkaAdminClient, or the bootstrap error with nothing left behind.

    kafka-python 3.0.12 starts the client's IO thread and opens its sockets before it bootstraps,
    and a failed bootstrap raises out of ``__init__`` without stopping either: every read during
    a Kafka outage would leave a thread behind (found by the fault tests under load).
    """
    admin = KafkaAdminClient.__new__(KafkaAdminClient)
    try:
        admin.__init__(**config)  # split from __new__ to clean up after a failure
    except BaseException:
        client = getattr(admin, "_client", None)
        if client is not None:
            client.close()
        net = getattr(admin, "_net", None)
        if net is not None:
            net.stop()
        metrics = getattr(admin, "_metrics", None)
        if metrics is not None:
            metrics.close()
        raise
    return admin


_SASL_HANDSHAKE: Final = 17
_SASL_AUTHENTICATE: Final = 36


def _all_refuse(servers: Sequence[str], timeout: float) -> bool:
    """True if every bootstrap server refuses a TCP connection outright.

    kafka-python retries a refused bootstrap until its timeout, so a stopped broker would cost
    every read the whole backend timeout (and a pool thread) before UNAVAILABLE. Anything but a
    refusal (an answer, silence, a name that does not resolve) is left to the real client.
    """
    wait = min(timeout, 0.25)  # a refusal is immediate; silence is the client's to time out
    for server in servers:
        address = host_port(server)  # validated when parsed
        if address is None:
            return False
        try:
            socket.create_connection(address, timeout=wait).close()
        except ConnectionRefusedError:
            continue
        except OSError:
            return False
        return False
    return True


def _sasl_rejection(connection: KafkaConnection, timeout: float) -> str | None:
    """The broker's reason for rejecting our SASL credentials, or None if it accepts them.

    kafka-python 3.0 loses the broker's SaslAuthenticate error (it arrives together with the
    connection close) and retries until its bootstrap times out, which would make a wrong
    password look like an outage. So before building a client, log in once ourselves on the
    first bootstrap server (kafka-python computes the PLAIN/SCRAM messages) and read the verdict.
    Anything other than a clear rejection returns None and is left to the real client.
    """
    mechanism = _SASL[connection.sasl]
    if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        return None
    config = {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": connection.username or "",
        "sasl_plain_password": connection.password or "",
    }
    client = SaslMechanismPlain(**config) if mechanism == "PLAIN" else SaslMechanismScram(**config)
    address = host_port(connection.bootstrap_servers[0])  # validated when parsed
    if address is None:
        return None
    host = address[0]
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            sock = (
                _ssl_context(connection).wrap_socket(raw, server_hostname=host)
                if connection.tls
                else raw
            )
            name = mechanism.encode()
            error, _, _ = _sasl_call(sock, 1, _SASL_HANDSHAKE, struct.pack(">h", len(name)) + name)
            if error:
                return f"the broker does not enable SASL mechanism {mechanism}"
            while not client.is_done():
                token = client.auth_bytes()
                error, message, reply = _sasl_call(
                    sock, 2, _SASL_AUTHENTICATE, struct.pack(">i", len(token)) + token
                )
                if error:
                    return message or f"error code {error}"
                client.receive(reply)
    except (OSError, ValueError, KeyError, struct.error, kerr.KafkaError):
        return None  # unreachable or unexpected: the real client will say what it is
    return None


def _sasl_call(
    sock: socket.socket, correlation: int, api: int, body: bytes
) -> tuple[int, str, bytes]:
    """One request with a v1 header (API version 1) and its (error code, message, bytes)."""
    client_id = b"keda-queue-scaler"
    request = struct.pack(">hhih", api, 1, correlation, len(client_id)) + client_id + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    response = _receive(sock, struct.unpack(">i", _receive(sock, 4))[0])
    (error,) = struct.unpack_from(">h", response, 4)
    if api == _SASL_HANDSHAKE:
        return error, "", b""
    (length,) = struct.unpack_from(">h", response, 6)
    at = 8 + max(length, 0)
    message = response[8:at].decode(errors="replace") if length > 0 else ""
    if error:
        return error, message, b""
    (size,) = struct.unpack_from(">i", response, at)
    return 0, "", response[at + 4 : at + 4 + max(size, 0)]


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data


def _connection_error(err: kerr.KafkaError) -> bool:
    return isinstance(err, kerr.RetriableError | kerr.BrokerNotAvailableError)


def _offsets(result: Mapping[Any, Any]) -> dict[TopicPartition, int]:
    """``{TopicPartition: OffsetAndMetadata | OffsetAndTimestamp}`` -> ``{TopicPartition: int}``."""
    return {tp: int(value.offset) for tp, value in result.items()}


class _OffsetHistory:
    """When each partition's committed offset last changed; the memory behind persistent lag."""

    def __init__(self) -> None:
        self._seen: dict[Hashable, tuple[int, float, float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + _HISTORY_TTL

    def unchanged_for(self, key: Hashable, offset: int, now: float) -> float:
        """Seconds the offset has stayed as it is now (0 at first sighting or after a change)."""
        with self._lock:
            previous = self._seen.get(key)
            since = previous[1] if previous is not None and previous[0] == offset else now
            self._seen[key] = (offset, since, now)
            if now > self._next_sweep:
                self._next_sweep = now + _HISTORY_TTL
                for k in [k for k, v in self._seen.items() if now - v[2] > _HISTORY_TTL]:
                    del self._seen[k]
            return now - since


def _client_config(connection: KafkaConnection, timeout: float) -> dict[str, Any]:
    mechanism = _SASL[connection.sasl]
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
        config["sasl_oauth_token_provider"] = _ClientCredentials(connection, timeout)
    elif mechanism:
        config["sasl_mechanism"] = mechanism
        config["sasl_plain_username"] = connection.username
        config["sasl_plain_password"] = connection.password
    if connection.tls:
        config["ssl_context"] = _ssl_context(connection)
        config["ssl_check_hostname"] = not connection.unsafe_ssl
    return config


def _ssl_context(connection: KafkaConnection) -> ssl.SSLContext:
    return context_for(NAME, connection)


class KafkaBackend:
    """The ``kafka`` entry of the backend registry: owns the thread pool and the offset history.

    :param timeout: kafka-python's request timeout in seconds
    :param threads: size of the thread pool kafka-python calls run in
    """

    name: Final = NAME
    connection_keys: Final = CONNECTION_KEYS

    def __init__(self, timeout: float, threads: int = 4) -> None:
        self._timeout = timeout
        self._executor = _started_pool(threads)
        self._history = _OffsetHistory()

    def parse(self, raw: Mapping[str, str]) -> KafkaTrigger:
        return parse_metadata(raw)

    def connect(self, connection: Hashable) -> BackendClient:
        assert isinstance(connection, KafkaConnection)
        return KafkaClient(connection, self._timeout, self._executor, self._history)

    def close(self) -> None:
        """Stop the thread pool; a read still blocked in it finishes on its own (daemon-like)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
