"""``backend: kafka`` triggers: connection identity, what is read, KEDA's lag arithmetic.

:func:`build` applies KEDA's cross-field rules (its ``Validate()``) to the declared
:class:`~scaler.backends.kafka.params.KafkaParams`, and the rules of the modes
(:func:`scaler.backends.kafka.ages.check_mode`). A trigger's :meth:`KafkaTrigger.evaluate` is
KEDA's lag arithmetic on raw offsets in ``mode: Lag``, and the oldest age
(:func:`scaler.backends.kafka.ages.evaluate`) in ``mode: LagSeconds``. The lag arithmetic differs
from KEDA's on purpose (docs/backends/kafka.md, "Differences from KEDA's built-in kafka trigger"):

* lag is clamped at 0;
* ``earliest`` with no commit counts log-end minus log-start, not the absolute log-end
  (keda#7936);
* the partition cap compares ``ceil(lag / threshold)``, not the integer division (off-by-one);
* persistent lag means "committed offset unchanged for ``persistentLagSeconds``" rather than
  "unchanged since this ScaledObject's previous poll", because reads are shared.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from scaler.backends.base import Evaluation, Measurement, Trigger, metric_name
from scaler.backends.kafka import ages
from scaler.backends.kafka.params import LAG_SECONDS, SASL_MECHANISMS, KafkaParams
from scaler.errors import MetadataError
from scaler.metadata import Reading
from scaler.values import host_port, quote

NAME: Final = "kafka"
log = logging.getLogger(__name__)

# partition numbers are int32 in the protocol (and KEDA parses them as such): 10 digits at most
_PARTITION_RANGE: Final = re.compile(r"^\s*(\d{1,10})\s*(?:-\s*(\d{1,10})\s*)?$")
_MAX_PARTITION: Final = 2**31 - 1


@dataclass(frozen=True, slots=True)
class PartitionRanges:
    """``partitionLimitation`` as sorted, merged, inclusive ranges: ``0-2147483647`` costs two
    numbers, not a set of two billion."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, spans: Iterable[tuple[int, int]]) -> PartitionRanges:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(spans):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return cls(tuple(merged))

    def __contains__(self, partition: int) -> bool:
        index = bisect.bisect_right(self.ranges, (partition, _MAX_PARTITION))
        return index > 0 and self.ranges[index - 1][1] >= partition


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

    @property
    def mechanism(self) -> str | None:
        """kafka-python's name of the SASL mechanism, None without SASL."""
        return SASL_MECHANISMS[self.sasl]


@dataclass(frozen=True, slots=True)
class ConsumerLag:
    """What is read: a group's offsets on one topic, or on every topic it committed on."""

    group: str
    topic: str | None
    #: read log-start offsets of uncommitted partitions (``offsetResetPolicy: earliest``)
    with_log_start: bool = False
    #: read the age of the oldest unconsumed record of each partition (``mode: LagSeconds``)
    with_ages: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaTrigger(Trigger[KafkaConnection, ConsumerLag]):
    """A parsed ``backend: kafka`` trigger.

    :param partitions: ``partitionLimitation``; None for every partition
    """

    params: KafkaParams
    partitions: PartitionRanges | None = None

    @property
    def target(self) -> float:
        if self.resource.with_ages:
            assert self.params.value is not None  # required with LagSeconds (build)
            return self.params.value
        return float(self.params.lag_threshold)

    @property
    def measures_age(self) -> bool:
        return self.resource.with_ages

    def metric_name(self) -> str:
        if self.resource.topic:
            return metric_name("kafka", self.resource.topic)
        return metric_name("kafka", self.resource.group, "topics")

    def resource_label(self) -> str:
        return f"{self.connection.label}/{self.resource.group}/{self.resource.topic or '*'}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        """KEDA's lag arithmetic (kafka_scaler.go), with the differences in the module docstring;
        or, in ``mode: LagSeconds``, the oldest age."""
        p = self.params
        partitions = list(measurement.items)
        if self.partitions is not None and self.resource.topic:
            partitions = [i for i in partitions if int(i["partition"]) in self.partitions]
            if not partitions:
                raise MetadataError(
                    [
                        "partitionLimitation: no partition of topic "
                        f"{self.resource.topic!r} is in the limitation"
                    ]
                )
        if self.resource.with_ages:
            return ages.evaluate(p, partitions)
        total_lag = 0.0
        total_with_persistent = 0.0
        with_lag = 0
        for item in partitions:
            lag, lag_with_persistent = self._partition_lag(item)
            total_lag += lag
            total_with_persistent += lag_with_persistent
            with_lag += lag > 0
        capped = not p.allow_idle_consumers or (
            p.limit_to_partitions_with_lag or p.ensure_even_distribution
        )
        if capped:
            bound = with_lag if p.limit_to_partitions_with_lag else len(partitions)
            if p.ensure_even_distribution:
                total_lag = self._even(total_lag, len(partitions))
            # KEDA tests int(lag / threshold) > bound; ceil() is what the HPA applies, so a lag
            # between bound and bound+1 thresholds would otherwise give bound+1 replicas.
            if math.ceil(total_lag / self.target) > bound:
                total_lag = bound * self.target
        return Evaluation(total_lag, total_with_persistent > p.activation_lag_threshold)

    def _partition_lag(self, item: Mapping[str, float | str]) -> tuple[float, float]:
        p = self.params
        committed = float(item["committed"])
        log_end = float(item["log_end"])
        if committed < 0:
            if p.scale_to_zero_on_invalid_offset:
                return 0.0, 0.0
            if p.offset_reset_policy == "latest":
                return 1.0, 1.0  # KEDA: keep one consumer so the group can commit
            # earliest: what a new consumer would read, not the absolute log-end (keda#7936)
            lag = max(log_end - float(item["log_start"]), 0.0)
            return lag, lag
        lag = max(log_end - committed, 0.0)
        persistent = (
            p.exclude_persistent_lag
            and lag > 0
            and float(item["unchanged_for"]) >= p.persistent_lag_seconds
        )
        return (0.0 if persistent else lag), lag

    def _even(self, lag: float, partitions: int) -> float:
        # smallest divisor of the partition count whose replicas can take the lag (KEDA)
        for factor in range(1, partitions + 1):
            if partitions % factor == 0 and factor * self.target >= lag:
                return factor * self.target
        return partitions * self.target


def _partition_set(reading: Reading, raw: str) -> PartitionRanges | None:
    spans: list[tuple[int, int]] = []
    for part in raw.split(","):
        match = _PARTITION_RANGE.match(part)
        if match is None:
            reading.problem(
                f"partitionLimitation: {quote(part.strip())} is not a partition or a range a-b"
            )
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high > _MAX_PARTITION:
            reading.problem(
                f"partitionLimitation: {quote(part.strip())} is beyond the largest partition "
                f"number ({_MAX_PARTITION})"
            )
            return None
        if high < low:
            reading.problem(f"partitionLimitation: range {quote(part.strip())} is empty")
            return None
        spans.append((low, high))
    return PartitionRanges.of(spans)


def _servers(reading: Reading, raw: str) -> tuple[str, ...]:
    servers = tuple(s.strip() for s in raw.split(",") if s.strip())
    for server in servers:
        if host_port(server) is None:
            reading.problem(f"bootstrapServers: {quote(server)} is not host:port")
    return servers


def _extensions(reading: Reading, raw: str) -> tuple[tuple[str, str], ...]:
    extensions: list[tuple[str, str]] = []
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name:
            reading.problem("oauthExtensions: an entry is not key=value")
        extensions.append((name.strip(), value.strip()))
    return tuple(extensions)


def _check_options(p: KafkaParams, reading: Reading) -> None:
    """KEDA's rules between the lag options."""
    if p.limit_to_partitions_with_lag and p.allow_idle_consumers:
        reading.problem("limitToPartitionsWithLag and allowIdleConsumers cannot both be true")
    if p.limit_to_partitions_with_lag and p.ensure_even_distribution:
        reading.problem(
            "limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot both be true"
        )
    if p.limit_to_partitions_with_lag and not p.topic:
        reading.problem("limitToPartitionsWithLag requires topic")
    if p.ensure_even_distribution and not p.topic:
        reading.problem("ensureEvenDistributionOfPartitions requires topic")
    if not p.full_metadata and not p.topic:
        reading.problem("topic must be specified when fullMetadata is false")


def _check_security(p: KafkaParams, reading: Reading) -> None:
    """KEDA's rules between the SASL and TLS keys."""
    if p.sasl == "gssapi":
        reading.problem(
            "sasl: 'gssapi' is not supported by this scaler (kafka-python needs Kerberos)"
        )
    if p.sasl_token_provider == "aws_msk_iam":  # noqa: S105 - a provider name, not a password
        reading.problem(
            "saslTokenProvider: 'aws_msk_iam' is not supported by this scaler (AWS MSK IAM "
            "needs AWS request signing, which kafka-python does not do)"
        )
    if SASL_MECHANISMS.get(p.sasl) is not None:
        if not p.username:
            reading.problem(f"username is required with sasl {p.sasl}")
        if not p.password:
            reading.problem(f"password is required with sasl {p.sasl}")
    if p.sasl == "oauthbearer" and not p.oauth_token_endpoint_uri:
        reading.problem("oauthTokenEndpointUri is required with sasl oauthbearer")
    if bool(p.cert) != bool(p.key):
        reading.problem("cert and key must be given together")


def build(p: KafkaParams, reading: Reading) -> KafkaTrigger | None:
    """The trigger, after KEDA's cross-field rules; None when a problem prevents it."""
    servers = _servers(reading, p.bootstrap_servers) if p.bootstrap_servers else ()
    limitation = _partition_set(reading, p.partition_limitation) if p.partition_limitation else None
    _check_options(p, reading)
    ages.check_mode(p, reading)
    if limitation is not None and not p.topic:
        limitation = None  # KEDA ignores it without a topic
        log.debug("partitionLimitation ignored: no topic")
    _check_security(p, reading)
    extensions = _extensions(reading, p.oauth_extensions) if p.oauth_extensions else ()
    if reading.failed:
        return None
    return KafkaTrigger(
        connection=KafkaConnection(
            bootstrap_servers=servers,
            sasl=p.sasl,
            username=p.username,
            password=p.password,
            tls=p.tls == "enable",
            unsafe_ssl=p.unsafe_ssl,
            ca=p.ca,
            cert=p.cert,
            key=p.key,
            key_password=p.key_password,
            oauth_token_endpoint=p.oauth_token_endpoint_uri,
            oauth_scopes=tuple(s.strip() for s in (p.scopes or "").split(",") if s.strip()),
            oauth_extensions=extensions,
        ),
        resource=ConsumerLag(
            p.consumer_group,
            p.topic,
            with_log_start=p.offset_reset_policy == "earliest",
            with_ages=p.mode == LAG_SECONDS,
        ),
        params=p,
        partitions=limitation,
    )
