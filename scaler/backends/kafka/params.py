"""``backend: kafka`` parameters: every key of KEDA's ``kafka`` trigger, declared once.

Names, defaults and meanings are KEDA's (v2.20.2, and ``fullMetadata`` from KEDA main). TLS and
SASL keys that KEDA reads from a TriggerAuthentication only are ordinary keys here, since KEDA
forwards no TriggerAuthentication to an external scaler (ideally given as ``xxxFromEnv``). The
cross-field rules are :func:`scaler.backends.kafka.trigger.build`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from scaler.metadata import param
from scaler.values import (
    InvalidValue,
    boolean,
    integer,
    lower,
    non_negative,
    number,
    positive,
    resource_name,
)

LAG: Final = "Lag"
LAG_SECONDS: Final = "LagSeconds"
#: KEDA's ``sasl`` values and the SASL mechanism kafka-python names each
SASL_MECHANISMS: Final = {
    "none": None,
    "plaintext": "PLAIN",
    "scram_sha256": "SCRAM-SHA-256",
    "scram_sha512": "SCRAM-SHA-512",
    "oauthbearer": "OAUTHBEARER",
}
# sarama's ParseKafkaVersion (KEDA v2.20.2 validates `version` with it): ASCII digits, four
# numbers before Kafka 1 and three from 1.0 on; each must fit the uint64 it is scanned into.
# The shortest match is five characters, so sarama's "shorter than 5 is invalid" is implied.
_VERSION_BEFORE_1: Final = re.compile(r"0\.[0-9]+\.[0-9]+\.[0-9]+")
_VERSION: Final = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")


def kafka_version(text: str) -> str:
    """A Kafka protocol version as KEDA accepts it: ``1.0.0``, or ``0.11.0.2`` before Kafka 1."""
    pattern = _VERSION_BEFORE_1 if text.startswith("0") else _VERSION
    # 20 digits at most: a longer number cannot fit, and int() refuses very long ones
    if not pattern.fullmatch(text) or any(len(n) > 20 or int(n) >= 2**64 for n in text.split(".")):
        raise InvalidValue("is not a Kafka version (e.g. 1.0.0, or 0.11.0.2 before Kafka 1)")
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaParams:
    """KEDA's ``kafka`` trigger parameters (TLS and SASL ones included: KEDA reads some from a
    TriggerAuthentication only, which it never forwards to an external scaler)."""

    bootstrap_servers: str = param(
        "bootstrapServers", connection=True, endpoint="host:port", doc="comma list of `host:port`"
    )
    consumer_group: str = param(
        "consumerGroup",
        resource_name,
        doc="the group whose committed offsets are compared with the log end",
    )
    topic: str | None = param(
        "topic",
        resource_name,
        default=None,
        shown_default="all topics the group committed on",
        doc="one topic",
    )
    lag_threshold: int = param(
        "lagThreshold",
        integer,
        default=10,
        check=positive,
        doc="target lag per replica (integer > 0)",
    )
    activation_lag_threshold: int = param(
        "activationLagThreshold",
        integer,
        default=0,
        check=non_negative,
        doc="active iff total lag (persistent lag included) > this",
    )
    mode: str = param(
        "mode",
        default=LAG,
        choices=(LAG, LAG_SECONDS),
        doc="extension: `Lag` is KEDA's lag in records; `LagSeconds` the age in seconds of the "
        "oldest unconsumed record ([lag in seconds](#scaling-on-lag-in-seconds))",
    )
    value: float | None = param(
        "value",
        number,
        default=None,
        check=positive,
        doc="extension: with `mode: LagSeconds` (and required with it), the target age in seconds "
        "(a number > 0)",
    )
    activation_value: float = param(
        "activationValue",
        number,
        default=0.0,
        check=non_negative,
        doc="extension: with `mode: LagSeconds`, active iff the oldest age (persistent lag "
        "included) in seconds > this",
    )
    active_while_in_flight: bool = param(
        "activeWhileInFlight",
        boolean,
        default=False,
        doc="refused when `true`: in-flight work on Kafka is the lag itself (a record stays "
        "unconsumed until its offset is committed)",
    )
    offset_reset_policy: str = param(
        "offsetResetPolicy",
        default="latest",
        choices=("latest", "earliest"),
        doc="how partitions without a commit count: `latest` 1 each, `earliest` log-end minus "
        "log-start",
    )
    scale_to_zero_on_invalid_offset: bool = param(
        "scaleToZeroOnInvalidOffset",
        boolean,
        default=False,
        doc="partitions without a commit count 0",
    )
    allow_idle_consumers: bool = param(
        "allowIdleConsumers", boolean, default=False, doc="no cap at the partition count"
    )
    limit_to_partitions_with_lag: bool = param(
        "limitToPartitionsWithLag",
        boolean,
        default=False,
        doc="cap at the number of partitions with lag (needs `topic`; not with "
        "`allowIdleConsumers` or `ensureEvenDistributionOfPartitions`)",
    )
    ensure_even_distribution: bool = param(
        "ensureEvenDistributionOfPartitions",
        boolean,
        default=False,
        doc="round the replica count up to a divisor of the partition count (needs `topic`)",
    )
    partition_limitation: str | None = param(
        "partitionLimitation",
        default=None,
        shown_default="all",
        doc="only these partitions, e.g. `1,2,10-20` (needs `topic`, ignored otherwise)",
    )
    exclude_persistent_lag: bool = param(
        "excludePersistentLag",
        boolean,
        default=False,
        doc="lag of a partition whose committed offset has not moved for `persistentLagSeconds` "
        "counts 0 in the metric (activity still counts it)",
    )
    persistent_lag_seconds: float = param(
        "persistentLagSeconds",
        number,
        default=30.0,
        check=non_negative,
        doc="extension: how long an unmoved committed offset makes lag persistent",
    )
    version: str = param(
        "version",
        kafka_version,
        default="1.0.0",
        doc="the Kafka protocol version KEDA's client speaks, validated as KEDA does; no effect "
        "here: kafka-python negotiates API versions with the broker itself",
    )
    full_metadata: bool = param(
        "fullMetadata",
        boolean,
        default=True,
        doc="KEDA main (for v2.21): `false` asks metadata for `topic` only, and needs it; "
        "validated as KEDA does, no effect here: this scaler asks for the topics it reads only",
    )
    sasl: str = param(
        "sasl",
        lower,
        default="none",
        choices=(*SASL_MECHANISMS, "gssapi"),
        connection=True,
        doc="the SASL mechanism; `gssapi` is refused (kafka-python would need Kerberos)",
    )
    username: str | None = param(
        "username",
        default=None,
        connection=True,
        doc="SASL user (required with a SASL mechanism); for `oauthbearer`, the OAuth client id",
    )
    password: str | None = param(
        "password",
        default=None,
        secret=True,
        connection=True,
        doc="SASL password (required with a SASL mechanism); for `oauthbearer`, the OAuth client "
        "secret",
    )
    oauth_token_endpoint_uri: str | None = param(
        "oauthTokenEndpointUri",
        default=None,
        connection=True,
        endpoint="uri",
        doc="OAuth 2 client-credentials token endpoint for `oauthbearer` (required with it)",
    )
    scopes: str | None = param(
        "scopes", default=None, connection=True, doc="OAuth 2 scopes for `oauthbearer`, `a,b`"
    )
    oauth_extensions: str | None = param(
        "oauthExtensions",
        default=None,
        connection=True,
        doc="SASL/OAUTHBEARER extensions for `oauthbearer`, `k=v,k=v`",
    )
    sasl_token_provider: str | None = param(
        "saslTokenProvider",
        default=None,
        choices=("bearer", "aws_msk_iam"),
        connection=True,
        shown_default="`bearer`",
        doc="where `oauthbearer` tokens come from: the OAuth endpoint above (`bearer`); "
        "`aws_msk_iam` is refused (kafka-python does not sign AWS MSK IAM requests)",
    )
    tls: str = param(
        "tls",
        default="disable",
        choices=("enable", "disable"),
        connection=True,
        doc="`enable` for TLS to the brokers",
    )
    unsafe_ssl: bool = param(
        "unsafeSsl", boolean, default=False, connection=True, doc="skip certificate verification"
    )
    ca: str | None = param(
        "ca", default=None, secret=True, connection=True, doc="PEM contents of the CAs to trust"
    )
    cert: str | None = param(
        "cert",
        default=None,
        secret=True,
        connection=True,
        doc="PEM contents of the client certificate (with `key`)",
    )
    key: str | None = param(
        "key",
        default=None,
        secret=True,
        connection=True,
        doc="PEM contents of the client key (with `cert`)",
    )
    key_password: str | None = param(
        "keyPassword", default=None, secret=True, connection=True, doc="password of `key`"
    )
