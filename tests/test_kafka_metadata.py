"""backend: kafka metadata against KEDA v2.20.2's own test tables (pkg/scalers/kafka_scaler_test.go).

What KEDA accepts we accept, with the same meaning, and what it rejects we reject, except in the
rows marked ``differs``, whose reason the row names. One difference runs through every table:
KEDA reads ``username``, ``password``, ``ca``, ``cert``, ``key``, ``keyPassword``, ``scopes``,
``oauthTokenEndpointUri`` and ``oauthExtensions`` from a TriggerAuthentication only, which KEDA
never forwards to an external scaler; here they are ordinary metadata keys. So a KEDA row's
``authParams`` are merged into its metadata (the metadata winning, as KEDA's ``order`` does).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from scaler.backends.kafka import KafkaBackend, KafkaTrigger
from scaler.backends.kafka.trigger import PartitionRanges
from scaler.errors import MetadataError
from scaler.proto import externalscaler_pb2 as pb
from scaler.values import quote
from tests.conftest import ref

# KEDA's validKafkaMetadata and validWithAuthParams
VALID = {
    "bootstrapServers": "broker1:9092,broker2:9092",
    "consumerGroup": "my-group",
    "topic": "my-topic",
    "allowIdleConsumers": "false",
}
WITH_AUTH = {"sasl": "plaintext", "username": "admin", "password": "admin"}
GSSAPI = "gssapi is refused here: kafka-python would need Kerberos"
MSK_IAM = "aws_msk_iam is refused with its own message: kafka-python does not sign AWS MSK IAM"


def parse(metadata: dict[str, str]) -> KafkaTrigger:
    trigger = KafkaBackend(timeout=1.0).parse({"backend": "kafka", **metadata})
    assert isinstance(trigger, KafkaTrigger)
    return trigger


def outcome(metadata: dict[str, str]) -> KafkaTrigger | MetadataError:
    try:
        return parse(metadata)
    except MetadataError as err:
        return err


def row(ident: str, metadata: dict[str, str], error: bool, *meaning: Any, differs: str = "") -> Any:
    """One KEDA row: its metadata, whether KEDA refuses it, and the fields its table checks
    (see :func:`expect`; the auth tables check ``enableTLS`` only)."""
    name = f"{ident} [differs: {differs}]" if differs else ident
    return pytest.param(metadata, error, meaning, differs, id=name)


def expect(
    brokers: list[str],
    group: str,
    topic: str,
    partitions: list[int] | None = None,
    policy: str = "latest",
    *flags: bool,
) -> tuple[Any, ...]:
    """KEDA's parsed fields: brokers, group, topic, partitionLimitation, offsetResetPolicy, and
    allowIdleConsumers, excludePersistentLag, limitToPartitionsWithLag,
    ensureEvenDistributionOfPartitions."""
    limitation = PartitionRanges.of((n, n) for n in partitions) if partitions is not None else None
    padded = (*flags, *(False,) * (4 - len(flags)))
    return (tuple(brokers), group, topic or None, limitation, policy, *padded)


def meaning(trigger: KafkaTrigger) -> tuple[Any, ...]:
    p = trigger.params
    return (
        trigger.connection.bootstrap_servers,
        trigger.resource.group,
        trigger.resource.topic,
        trigger.partitions,
        p.offset_reset_policy,
        p.allow_idle_consumers,
        p.exclude_persistent_lag,
        p.limit_to_partitions_with_lag,
        p.ensure_even_distribution,
    )


F = ["foobar:9092"]
FB = ["foo:9092", "bar:9092"]
G = {"bootstrapServers": "foobar:9092", "consumerGroup": "my-group"}
GT = {**G, "topic": "my-topic"}
FBT = {"bootstrapServers": "foo:9092,bar:9092", "consumerGroup": "my-group", "topic": "my-topic"}

# parseKafkaMetadataTestDataset, in KEDA's order and with its comments as ids
METADATA_ROWS = [
    row("failure, no bootstrapServers", {}, True),
    row("failure, no consumer group", {"bootstrapServers": "foobar:9092"}, True),
    row("success, no topic", G, False, *expect(F, "my-group", "")),
    row(
        "success, ignore partitionLimitation if no topic",
        {**G, "partitionLimitation": "1,2,3,4,5,6"},
        False,
        *expect(F, "my-group", ""),
    ),
    row(
        "success, no limitation with whitespaced limitation value",
        {**G, "partitionLimitation": "           "},
        False,
        *expect(F, "my-group", ""),
    ),
    row(
        "success, no limitation",
        {**G, "partitionLimitation": ""},
        False,
        *expect(F, "my-group", ""),
    ),
    row("failure, version not supported", {**GT, "version": "1.2.3.4"}, True),
    row("failure, lagThreshold is negative value", {**GT, "lagThreshold": "-1"}, True),
    row("failure, lagThreshold is 0", {**GT, "lagThreshold": "0"}, True),
    row(
        "success, lagThreshold is 1000000",
        {**GT, "lagThreshold": "1000000", "activationLagThreshold": "0"},
        False,
        *expect(F, "my-group", "my-topic"),
    ),
    row(
        "failure, activationLagThreshold is not int",
        {**GT, "lagThreshold": "10", "activationLagThreshold": "AA"},
        True,
    ),
    row(
        "success, activationLagThreshold is 0",
        {**GT, "lagThreshold": "10", "activationLagThreshold": "0"},
        False,
        *expect(F, "my-group", "my-topic"),
    ),
    row("success", GT, False, *expect(F, "my-group", "my-topic")),
    row(
        "success, partitionLimitation as list",
        {**GT, "partitionLimitation": "1,2,3,4"},
        False,
        *expect(F, "my-group", "my-topic", [1, 2, 3, 4]),
    ),
    row(
        "success, partitionLimitation as range",
        {**GT, "partitionLimitation": "1-4"},
        False,
        *expect(F, "my-group", "my-topic", [1, 2, 3, 4]),
    ),
    row(
        "success, partitionLimitation mixed list + ranges",
        {**GT, "partitionLimitation": "1-4,8,10-12"},
        False,
        *expect(F, "my-group", "my-topic", [1, 2, 3, 4, 8, 10, 11, 12]),
    ),
    row(
        "failure, partitionLimitation wrong data type",
        {**GT, "partitionLimitation": "a,b,c,d"},
        True,
    ),
    row("success, more brokers", FBT, False, *expect(FB, "my-group", "my-topic")),
    row(
        "success, offsetResetPolicy policy latest",
        {**FBT, "offsetResetPolicy": "latest"},
        False,
        *expect(FB, "my-group", "my-topic"),
    ),
    row("failure, offsetResetPolicy policy wrong", {**FBT, "offsetResetPolicy": "foo"}, True),
    row(
        "success, offsetResetPolicy policy earliest",
        {**FBT, "offsetResetPolicy": "earliest"},
        False,
        *expect(FB, "my-group", "my-topic", None, "earliest"),
    ),
    row("failure, allowIdleConsumers malformed", {**GT, "allowIdleConsumers": "notvalid"}, True),
    row(
        "success, allowIdleConsumers is true",
        {**GT, "allowIdleConsumers": "true"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", True),
    ),
    row(
        "failure, excludePersistentLag is malformed",
        {**GT, "excludePersistentLag": "notvalid"},
        True,
    ),
    row(
        "success, excludePersistentLag is true",
        {**GT, "excludePersistentLag": "true"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", False, True),
    ),
    row(
        "success, version supported",
        {**GT, "allowIdleConsumers": "true", "version": "1.0.0"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", True),
    ),
    row(
        "success, limitToPartitionsWithLag is true",
        {**GT, "limitToPartitionsWithLag": "true"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", False, False, True),
    ),
    row(
        "failure, limitToPartitionsWithLag is malformed",
        {**GT, "limitToPartitionsWithLag": "notvalid"},
        True,
    ),
    row(
        "failure, allowIdleConsumers and limitToPartitionsWithLag cannot be set to true "
        "simultaneously",
        {**GT, "allowIdleConsumers": "true", "limitToPartitionsWithLag": "true"},
        True,
    ),
    row(
        "success, allowIdleConsumers can be set when limitToPartitionsWithLag is false",
        {**GT, "allowIdleConsumers": "true", "limitToPartitionsWithLag": "false"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", True),
    ),
    row(
        "failure, topic must be specified when limitToPartitionsWithLag is true",
        {**G, "limitToPartitionsWithLag": "true"},
        True,
    ),
    row(
        "success, ensureEvenDistributionOfPartitions is true",
        {**GT, "ensureEvenDistributionOfPartitions": "true"},
        False,
        *expect(F, "my-group", "my-topic", None, "latest", False, False, False, True),
    ),
    row(
        "failure, limitToPartitionsWithLag and ensureEvenDistributionOfPartitions cannot be set "
        "to true simultaneously",
        {**GT, "ensureEvenDistributionOfPartitions": "true", "limitToPartitionsWithLag": "true"},
        True,
    ),
]


@pytest.mark.parametrize("auth", [WITH_AUTH, {}], ids=["with authParams", "without"])
@pytest.mark.parametrize(("metadata", "error", "expected", "differs"), METADATA_ROWS)
def test_keda_metadata_rows(
    metadata: dict[str, str],
    error: bool,
    expected: tuple[Any, ...],
    differs: str,
    auth: dict[str, str],
) -> None:
    # KEDA's TestGetBrokers parses every row with validWithAuthParams and without
    result = outcome({**auth, **metadata})
    assert isinstance(result, MetadataError) is error, result
    if not error:
        assert isinstance(result, KafkaTrigger)
        assert meaning(result) == expected


KT = "caaa", "ceert", "keey"
CA, CERT, KEY = ({"ca": KT[0]}, {"cert": KT[1]}, {"key": KT[2]})
TLS = {"tls": "enable", **CA, **CERT, **KEY}
OAUTH = {
    "sasl": "oauthbearer",
    "username": "admin",
    "password": "admin",
    "scopes": "scope",
    "oauthTokenEndpointUri": "https://website.com",
    "tls": "disable",
}
KRB = {"kerberosConfig": "<config>", "realm": "tst.com"}

# parseKafkaAuthParamsTestDataset (merged into validKafkaMetadata); the last column is enableTLS
AUTH_ROWS = [
    row("success, SASL only", WITH_AUTH, False, False),
    row("success, SASL only (scram_sha256)", {**WITH_AUTH, "sasl": "scram_sha256"}, False, False),
    row("success, SASL only (scram_sha512)", {**WITH_AUTH, "sasl": "scram_sha512"}, False, False),
    row("success, TLS only", TLS, False, True),
    row(
        "success, TLS cert/key and assumed public CA",
        {"tls": "enable", **CERT, **KEY},
        False,
        True,
    ),
    row(
        "success, TLS cert/key + key password and assumed public CA",
        {"tls": "enable", **CERT, **KEY, "keyPassword": "keeyPassword"},
        False,
        True,
    ),
    row("success, TLS CA only", {"tls": "enable", **CA}, False, True),
    row("success, SASL + TLS", {**WITH_AUTH, **TLS}, False, True),
    row("success, SASL + TLS explicitly disabled", {**WITH_AUTH, "tls": "disable"}, False, False),
    row("success, SASL OAUTHBEARER + TLS", OAUTH, False, False),
    row(
        "success, SASL GSSAPI/password",
        {"sasl": "gssapi", "username": "admin", "password": "admin", **KRB},
        False,
        differs=GSSAPI,
    ),
    row(
        "success, SASL GSSAPI/keytab",
        {"sasl": "gssapi", "username": "admin", "keytab": "/path/to/keytab", **KRB},
        False,
        differs=GSSAPI,
    ),
    row(
        "success, SASL GSSAPI/password + TLS",
        {"sasl": "gssapi", "username": "admin", "password": "admin", **KRB, **TLS},
        False,
        differs=GSSAPI,
    ),
    row(
        "success, SASL GSSAPI/keytab + TLS",
        {"sasl": "gssapi", "username": "admin", "keytab": "/path/to/keytab", **KRB, **TLS},
        False,
        differs=GSSAPI,
    ),
    row(
        "success, SASL GSSAPI, KerberosServiceName supported",
        {
            "sasl": "gssapi",
            "username": "admin",
            "keytab": "/path/to/keytab",
            **KRB,
            "kerberosServiceName": "srckafka",
        },
        False,
        differs=GSSAPI,
    ),
    row("failure, SASL OAUTHBEARER + TLS bad sasl type", {**OAUTH, "sasl": "foo"}, True),
    row(
        "success, SASL OAUTHBEARER + TLS missing scope",
        {k: v for k, v in OAUTH.items() if k != "scopes"},
        False,
        False,
    ),
    row(
        "failure, SASL OAUTHBEARER + TLS missing oauthTokenEndpointUri",
        {**OAUTH, "oauthTokenEndpointUri": ""},
        True,
    ),
    row("failure, SASL incorrect type", {**WITH_AUTH, "sasl": "foo"}, True),
    row("failure, SASL missing username", {"sasl": "plaintext", "password": "admin"}, True),
    row("failure, SASL missing password", {"sasl": "plaintext", "username": "admin"}, True),
    row("failure, TLS missing cert", {"tls": "enable", **CA, **KEY}, True),
    row("failure, TLS missing key", {"tls": "enable", **CA, **CERT}, True),
    row("failure, TLS invalid", {**TLS, "tls": "yes"}, True),
    row("failure, SASL + TLS, incorrect sasl", {**WITH_AUTH, **TLS, "sasl": "foo"}, True),
    row("failure, SASL + TLS, incorrect tls", {**WITH_AUTH, **TLS, "tls": "foo"}, True),
    row(
        "failure, SASL + TLS, missing username",
        {"sasl": "plaintext", "password": "admin", **TLS},
        True,
    ),
    row(
        "failure, SASL + TLS, missing password",
        {"sasl": "plaintext", "username": "admin", **TLS},
        True,
    ),
    row(
        "failure, SASL + TLS, missing cert",
        {**WITH_AUTH, "tls": "enable", **CA, **KEY},
        True,
    ),
    row("failure, SASL + TLS, missing key", {**WITH_AUTH, "tls": "enable", **CA, **CERT}, True),
    row(
        "failure, SASL GSSAPI missing password and keytab (refused as gssapi here)",
        {"sasl": "gssapi", "username": "admin", **KRB},
        True,
    ),
    row(
        "failure, SASL GSSAPI provided both password and keytab (refused as gssapi here)",
        {
            "sasl": "gssapi",
            "username": "admin",
            "password": "admin",
            "keytab": "/path/to/keytab",
            **KRB,
        },
        True,
    ),
    row(
        "failure, SASL GSSAPI/password + TLS missing realm (refused as gssapi here)",
        {
            "sasl": "gssapi",
            "username": "admin",
            "password": "admin",
            "kerberosConfig": "<config>",
            **TLS,
        },
        True,
    ),
    row(
        "failure, SASL GSSAPI/keytab + TLS missing username (refused as gssapi here)",
        {"sasl": "gssapi", "keytab": "/path/to/keytab", **KRB, **TLS},
        True,
    ),
    row(
        "success, SASL GSSAPI/disableFast",
        {
            "sasl": "gssapi",
            "username": "admin",
            "keytab": "/path/to/keytab",
            **KRB,
            "kerberosDisableFAST": "true",
        },
        False,
        differs=GSSAPI,
    ),
    row(
        "failure, SASL GSSAPI/disableFast incorrect (refused as gssapi here)",
        {
            "sasl": "gssapi",
            "username": "admin",
            "keytab": "/path/to/keytab",
            **KRB,
            "kerberosDisableFAST": "notabool",
        },
        True,
    ),
    row("success, SASL none", {"sasl": "none"}, False, False),
]

# parseKafkaOAuthbearerAuthParamsTestDataset (merged into validKafkaMetadata)
MSK = {"sasl": "oauthbearer", "saslTokenProvider": "aws_msk_iam"}
OAUTH_ROWS = [
    row("success, SASL OAUTHBEARER + TLS", OAUTH, False, False),
    row(
        "success, SASL OAUTHBEARER + tokenProvider + TLS",
        {**OAUTH, "saslTokenProvider": "bearer"},
        False,
        False,
    ),
    row(
        "success, SASL OAUTHBEARER + TLS multiple scopes",
        {**OAUTH, "scopes": "scope1, scope2"},
        False,
        False,
    ),
    row(
        "failure, SASL OAUTHBEARER + bad extension",
        {**OAUTH, "oauthExtensions": "extension_foo=bar,extension_bazbaz"},
        True,
    ),
    row(
        "success, SASL OAUTHBEARER + extension",
        {**OAUTH, "oauthExtensions": "extension_foo=bar"},
        False,
        False,
    ),
    row(
        "success, SASL OAUTHBEARER + multiple extensions",
        {**OAUTH, "oauthExtensions": "extension_foo=bar,extension_baz=baz"},
        False,
        False,
    ),
    row(
        "success, SASL OAUTHBEARER MSK + TLS + Credentials",
        {
            **MSK,
            "tls": "enable",
            "awsRegion": "eu-west-1",
            "awsAccessKeyID": "none",
            "awsSecretAccessKey": "none",
        },
        False,
        differs=MSK_IAM,
    ),
    row(
        "success, SASL OAUTHBEARER MSK + TLS + Role",
        {**MSK, "tls": "enable", "awsRegion": "eu-west-1", "awsRoleArn": "none"},
        False,
        differs=MSK_IAM,
    ),
    row("failure, SASL OAUTHBEARER MSK + no TLS", {**MSK, "tls": "disable"}, True),
    row(
        "failure, SASL OAUTHBEARER MSK + TLS + no region",
        {**MSK, "tls": "enable", "awsRegion": ""},
        True,
    ),
    row(
        "failure, SASL OAUTHBEARER MSK + TLS + no credentials",
        {**MSK, "tls": "enable", "awsRegion": "eu-west-1"},
        True,
    ),
]

# parseAuthParamsTestDataset: the rows that still say something once authParams are merged
SPLIT_ROWS = [
    row(
        "success, TLS CA only and unsafeSSL",
        {"tls": "enable", "unsafeSsl": "true", **CA},
        False,
        True,
    ),
    *(
        row(
            f"success, setting SASL {sasl} value with extra {shown} in TriggerAuthentication",
            {"sasl": sasl + space, "username": "admin", "password": "admin"},
            False,
            False,
        )
        for sasl in ("plaintext", "scram_sha256", "scram_sha512")
        for space, shown in (("\n", "\\n"), (" ", "space"))
    ),
]

# Not a KEDA row but KEDA's rule: it reads username and password from authParams only, so the
# same keys in trigger metadata leave it with "no username given".
DIFFERENCE_ROWS = [
    row(
        "sasl, username and password in trigger metadata",
        WITH_AUTH,
        True,
        differs="credentials are metadata keys here: TriggerAuthentication is not forwarded",
    ),
]


@pytest.mark.parametrize(
    ("metadata", "error", "expected", "differs"),
    AUTH_ROWS + OAUTH_ROWS + SPLIT_ROWS + DIFFERENCE_ROWS,
)
def test_keda_auth_rows(
    metadata: dict[str, str], error: bool, expected: tuple[Any, ...], differs: str
) -> None:
    result = outcome({**VALID, **metadata})
    # a deliberate difference is pinned too: the day it goes away, its row says so
    assert isinstance(result, MetadataError) is (error != bool(differs)), result
    if isinstance(result, KafkaTrigger) and expected:
        assert result.connection.tls is expected[0]


@pytest.mark.parametrize(
    "version", ["1.0.0", "2.8.1", "3.9.0", "0.11.0.2", "0.8.2.0", "18446744073709551615.0.0"]
)
def test_version_accepts_what_sarama_parses(version: str) -> None:
    assert parse({**GT, "version": version}).params.version == version


@pytest.mark.parametrize(
    "version",
    [
        "1.2.3.4",  # KEDA's "version not supported" row
        "1.0",
        "0.11.0",  # before Kafka 1 a version has four numbers
        "01.0.0",
        "v1.0.0",
        "1.0.0-rc1",
        "\u0661.\u0660.\u0660",  # digits, but not ASCII ones
        "18446744073709551616.0.0",  # does not fit sarama's uint
        "1" * 5000 + ".0.0",
    ],
)
def test_version_refuses_what_sarama_refuses(version: str) -> None:
    with pytest.raises(MetadataError) as err:
        parse({**GT, "version": version})
    assert err.value.problems == (
        f"kafka: version: {quote(version)} is not a Kafka version (e.g. 1.0.0, or 0.11.0.2 before "
        "Kafka 1)",
    )


def test_full_metadata_false_needs_a_topic_and_a_boolean() -> None:
    assert parse(G).params.full_metadata is True
    assert parse({**GT, "fullMetadata": "false"}).params.full_metadata is False
    with pytest.raises(MetadataError) as err:
        parse({**G, "fullMetadata": "false"})
    assert err.value.problems == ("kafka: topic must be specified when fullMetadata is false",)
    with pytest.raises(MetadataError) as err:
        parse({**GT, "fullMetadata": "notabool"})
    assert err.value.problems == (
        "kafka: fullMetadata: 'notabool' is not a boolean (true or false)",
    )


def test_aws_msk_iam_is_refused_by_name_and_bearer_accepted() -> None:
    oauth = {
        **GT,
        "sasl": "oauthbearer",
        "username": "id",
        "password": "secret",
        "oauthTokenEndpointUri": "https://idp/token",
    }
    assert parse({**oauth, "saslTokenProvider": "bearer"}).connection.sasl == "oauthbearer"
    with pytest.raises(MetadataError) as err:
        parse({**oauth, "saslTokenProvider": "aws_msk_iam"})
    assert err.value.problems == (
        "kafka: saslTokenProvider: 'aws_msk_iam' is not supported by this scaler (AWS MSK IAM "
        "needs AWS request signing, which kafka-python does not do)",
    )


def test_version_and_full_metadata_change_nothing_that_is_read() -> None:
    # kafka-python negotiates API versions itself and only ever asks for the topics it reads
    plain = parse(GT)
    tuned = parse({**GT, "version": "2.0.0", "fullMetadata": "false"})
    assert (tuned.connection, tuned.resource) == (plain.connection, plain.resource)


async def test_an_invalid_version_is_invalid_argument(serve) -> None:
    running = await serve()
    metadata = {"backend": "kafka", **GT, "version": "1.2.3.4"}
    for call in (
        running.stub.GetMetricSpec(ref(metadata)),
        running.stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref(metadata), metricName="")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "version: '1.2.3.4'" in (err.value.details() or "")
