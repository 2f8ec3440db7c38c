"""backend: rabbitmq metadata and evaluation, table-driven as KEDA's rabbitmq_scaler_test.go.

Parsing: names, defaults, URI handling (vhost from the path, credentials split out), KEDA's
cross-field rules, every problem in one error, no secret in a message or a repr. Evaluation: KEDA's
per-mode metric and activity table and the sum/max/avg combination of regex-matched queues.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from scaler.backends.base import Measurement
from scaler.backends.rabbitmq import (
    RabbitConnection,
    RabbitMQBackend,
    RabbitQueue,
    RabbitTrigger,
    _ssl_context,
    duration_seconds,
    parse_metadata,
)
from scaler.errors import MetadataError
from scaler.metadata import InvalidValue

AMQP = {"backend": "rabbitmq", "host": "amqp://user:pw@rabbit.svc:5672/orders", "queueName": "jobs"}
HTTP = {
    "backend": "rabbitmq",
    "host": "http://user:pw@rabbit.svc:15672/orders",
    "queueName": "jobs",
}
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nkey-material-secret\n-----END PRIVATE KEY-----\n"


def amqp_conn(**kw: object) -> RabbitConnection:
    fields: dict[str, object] = {
        "protocol": "amqp",
        "scheme": "amqp",
        "host": "rabbit.svc",
        "port": 5672,
        "username": "user",
        "password": "pw",
    }
    fields.update(kw)
    return RabbitConnection(**fields)  # type: ignore[arg-type]


def http_conn(**kw: object) -> RabbitConnection:
    fields: dict[str, object] = {
        "protocol": "http",
        "scheme": "http",
        "host": "rabbit.svc",
        "port": 15672,
        "username": "user",
        "password": "pw",
    }
    fields.update(kw)
    return RabbitConnection(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param(
            AMQP,
            RabbitTrigger(amqp_conn(), RabbitQueue("amqp", "orders", "jobs")),
            id="AMQP defaults: QueueLength, value 20, activation 0, vhost from the path",
        ),
        pytest.param(
            {**AMQP, "host": "amqp://rabbit.svc"},
            RabbitTrigger(
                amqp_conn(username=None, password=None), RabbitQueue("amqp", "/", "jobs")
            ),
            id="no path: vhost /, default port 5672, no credentials",
        ),
        pytest.param(
            {**AMQP, "host": "amqp://user:pw@rabbit.svc:5672/%2F"},
            RabbitTrigger(amqp_conn(), RabbitQueue("amqp", "/", "jobs")),
            id="%2F is the vhost /",
        ),
        pytest.param(
            {**AMQP, "host": "amqps://user:p%40ss@rabbit.svc/a%2Fb"},
            RabbitTrigger(
                amqp_conn(scheme="amqps", port=5671, password="p@ss"),
                RabbitQueue("amqp", "a/b", "jobs"),
            ),
            id="amqps default port 5671; userinfo and vhost percent-decoded",
        ),
        pytest.param(
            {**AMQP, "vhostName": "other", "username": "keda", "password": "secret2"},
            RabbitTrigger(
                amqp_conn(username="keda", password="secret2"),
                RabbitQueue("amqp", "other", "jobs"),
            ),
            id="vhostName and username/password override the URI",
        ),
        pytest.param(
            {**AMQP, "queueLength": "7", "activationValue": "2.5"},
            RabbitTrigger(
                amqp_conn(), RabbitQueue("amqp", "orders", "jobs"), "QueueLength", 7.0, 2.5
            ),
            id="deprecated queueLength = mode QueueLength + value",
        ),
        pytest.param(
            {**AMQP, "mode": "QueueLength", "value": "0.5", "protocol": "amqp"},
            RabbitTrigger(amqp_conn(), RabbitQueue("amqp", "orders", "jobs"), value=0.5),
            id="explicit mode and fractional value",
        ),
        pytest.param(
            {**AMQP, "operation": "max", "pageSize": "3"},
            RabbitTrigger(amqp_conn(), RabbitQueue("amqp", "orders", "jobs"), operation="max"),
            id="operation/pageSize accepted with AMQP (no effect, as in KEDA)",
        ),
        pytest.param(
            HTTP,
            RabbitTrigger(http_conn(), RabbitQueue("http", "orders", "jobs")),
            id="HTTP: the last path segment is the vhost",
        ),
        pytest.param(
            {**HTTP, "host": "http://user:pw@rabbit.svc:15672"},
            RabbitTrigger(http_conn(), RabbitQueue("http", "/", "jobs")),
            id="HTTP without a path: vhost /",
        ),
        pytest.param(
            {**HTTP, "host": "http://user:pw@rabbit.svc:15672/"},
            RabbitTrigger(http_conn(), RabbitQueue("http", "/", "jobs")),
            id="HTTP path / : vhost /",
        ),
        pytest.param(
            {**HTTP, "host": "https://user:pw@rabbit.svc/mgmt/api-prefix/%2F"},
            RabbitTrigger(
                http_conn(scheme="https", port=443, path_prefix="/mgmt/api-prefix"),
                RabbitQueue("http", "/", "jobs"),
            ),
            id="HTTPS default port 443; earlier segments are a path prefix",
        ),
        pytest.param(
            {**HTTP, "vhostName": "/"},
            RabbitTrigger(http_conn(), RabbitQueue("http", "/", "jobs")),
            id="vhostName overrides the HTTP path's vhost",
        ),
        pytest.param(
            {
                **HTTP,
                "mode": "MessageRate",
                "value": "100",
                "activationValue": "1",
                "useRegex": "true",
                "queueName": "^jobs-.*$",
                "operation": "avg",
                "pageSize": "500",
                "excludeUnacknowledged": "true",
                "timeout": "1500",
            },
            RabbitTrigger(
                http_conn(timeout=1.5),
                RabbitQueue("http", "orders", "^jobs-.*$", use_regex=True, page_size=500),
                "MessageRate",
                100.0,
                1.0,
                "avg",
                True,
            ),
            id="every HTTP option",
        ),
        pytest.param(
            {**HTTP, "pageSize": "5"},
            RabbitTrigger(http_conn(), RabbitQueue("http", "orders", "jobs")),
            id="pageSize without useRegex does not split the resource",
        ),
        pytest.param(
            {**HTTP, "timeout": "2s"},
            RabbitTrigger(http_conn(timeout=2.0), RabbitQueue("http", "orders", "jobs")),
            id="timeout as a Go duration",
        ),
        pytest.param(
            {
                "backend": "rabbitmq",
                "hostFromEnv": "http://rabbit.svc:15672/orders",
                "queueName": "jobs",
                "usernameFromEnv": "user",
                "passwordFromEnv": "pw",
                "scalerAddress": "scaler:9090",
                "unknownKey": "ignored",
            },
            RabbitTrigger(http_conn(), RabbitQueue("http", "orders", "jobs")),
            id="FromEnv keys; unknown keys ignored",
        ),
        pytest.param(
            {
                **AMQP,
                "host": "amqps://rabbit.svc/orders",
                "tls": "enable",
                "ca": PEM_CERT,
                "cert": PEM_CERT,
                "key": PEM_KEY,
                "keyPassword": "kp",
                "unsafeSsl": "true",
            },
            RabbitTrigger(
                amqp_conn(
                    scheme="amqps",
                    port=5671,
                    username=None,
                    password=None,
                    unsafe_ssl=True,
                    # values are trimmed, PEM's final newline included
                    ca=PEM_CERT.strip(),
                    cert=PEM_CERT.strip(),
                    key=PEM_KEY.strip(),
                    key_password="kp",
                ),
                RabbitQueue("amqp", "orders", "jobs"),
            ),
            id="TLS with CA, client certificate and key",
        ),
    ],
)
def test_valid_metadata(metadata: dict[str, str], expected: RabbitTrigger) -> None:
    assert parse_metadata(metadata) == expected


@pytest.mark.parametrize(
    ("metadata", "problems"),
    [
        pytest.param(
            {"backend": "rabbitmq"},
            ["missing required parameter host", "missing required parameter queueName"],
            id="nothing given",
        ),
        pytest.param(
            {**AMQP, "host": "redis://rabbit:6379"},
            ["host: 'redis://rabbit:6379' must start with amqp://, amqps://, http:// or https://"],
            id="unknown scheme",
        ),
        pytest.param(
            {**AMQP, "host": "rabbit.svc:5672"},
            ["must start with amqp://, amqps://, http:// or https://"],
            id="no scheme",
        ),
        pytest.param(
            {**AMQP, "host": "amqp://rabbit:99999/"},
            ["host: 'amqp://rabbit:99999/' is not a valid URI"],
            id="bad port",
        ),
        pytest.param(
            {**AMQP, "protocol": "tcp"},
            ["protocol: 'tcp' must be one of [auto, amqp, http]"],
            id="unknown protocol",
        ),
        pytest.param(
            {**AMQP, "protocol": "http"},
            ["protocol: 'http' does not match the amqp:// host"],
            id="protocol http with an amqp host",
        ),
        pytest.param(
            {**HTTP, "protocol": "amqp"},
            ["protocol: 'amqp' does not match the http:// host"],
            id="protocol amqp with an http host",
        ),
        pytest.param(
            {**HTTP, "mode": "Length", "value": "5"},
            ["mode: 'Length' must be one of [QueueLength, MessageRate, DeliverGetRate"],
            id="unknown mode",
        ),
        pytest.param(
            {**HTTP, "mode": "MessageRate"},
            ["missing required parameter value (mode is set)"],
            id="mode without value",
        ),
        pytest.param(
            {**HTTP, "value": "5"},
            ["missing required parameter mode (value is set)"],
            id="value without mode",
        ),
        pytest.param(
            {**HTTP, "mode": "QueueLength", "value": "0"},
            ["value: '0' must be greater than 0"],
            id="zero value",
        ),
        pytest.param(
            {**HTTP, "mode": "QueueLength", "value": "-3"},
            ["value: '-3' must be greater than 0"],
            id="negative value",
        ),
        pytest.param(
            {**HTTP, "queueLength": "5", "mode": "QueueLength", "value": "5"},
            ["queueLength is deprecated and cannot be combined with mode or value"],
            id="queueLength mixed with mode and value",
        ),
        pytest.param(
            {**HTTP, "queueLength": "5", "value": "5"},
            ["queueLength is deprecated and cannot be combined with mode or value"],
            id="queueLength mixed with value",
        ),
        pytest.param(
            {**HTTP, "queueLength": "many"},
            ["queueLength: 'many' is not a valid number"],
            id="non-numeric queueLength",
        ),
        pytest.param(
            {**AMQP, "mode": "MessageRate", "value": "10"},
            ["mode: 'MessageRate' needs message rates, which only the management API has"],
            id="rate mode over AMQP",
        ),
        pytest.param(
            {**AMQP, "mode": "ExpectedQueueConsumptionTime", "value": "10"},
            ["use an http:// or https:// host (protocol: http)"],
            id="consumption time over AMQP",
        ),
        pytest.param(
            {**AMQP, "useRegex": "true"},
            ["useRegex: true needs the management API"],
            id="regex over AMQP",
        ),
        pytest.param(
            {**AMQP, "excludeUnacknowledged": "true"},
            ["excludeUnacknowledged: true needs the management API"],
            id="excludeUnacknowledged over AMQP",
        ),
        pytest.param(
            {**AMQP, "timeout": "1000"},
            ["timeout applies to the management API only"],
            id="timeout over AMQP",
        ),
        pytest.param(
            {**HTTP, "timeout": "0"}, ["timeout: '0' must be greater than 0"], id="zero timeout"
        ),
        pytest.param(
            {**HTTP, "timeout": "soon"},
            ["timeout: 'soon' is not a duration"],
            id="bad timeout",
        ),
        pytest.param(
            {**HTTP, "pageSize": "0"}, ["pageSize: '0' must be 1 or greater"], id="zero pageSize"
        ),
        pytest.param(
            {**HTTP, "operation": "median"},
            ["operation: 'median' must be one of [sum, max, avg]"],
            id="unknown operation",
        ),
        pytest.param(
            {**HTTP, "useRegex": "yes"},
            ["useRegex: 'yes' is not a boolean"],
            id="bad boolean",
        ),
        pytest.param(
            {**HTTP, "username": "keda"},
            ["username and password must be given together"],
            id="username without password",
        ),
        pytest.param(
            {**HTTP, "host": "https://rabbit/", "tls": "enable", "cert": PEM_CERT},
            ["cert and key must be given together"],
            id="cert without key",
        ),
        pytest.param(
            {**HTTP, "tls": "enable"},
            ["tls: 'enable' needs an amqps:// or https:// host, not http://"],
            id="tls enable with a plain scheme",
        ),
        pytest.param(
            {**HTTP, "tls": "yes"},
            ["tls: 'yes' must be one of [enable, disable]"],
            id="bad tls",
        ),
        pytest.param(
            {**HTTP, "host": "https://rabbit/", "ca": PEM_CERT},
            ["ca is used only with tls: enable"],
            id="ca without tls enable",
        ),
        pytest.param(
            {**HTTP, "host": "https://rabbit/", "tls": "enable", "ca": "not a pem"},
            ["ca: 'not a pem' is not PEM"],
            id="ca not PEM",
        ),
        pytest.param(
            {**HTTP, "oauthTokenURI": "https://idp/token", "clientSecretFromEnv": "s3cr3t-oauth"},
            [
                "oauthTokenURI is not supported",
                "clientSecret is not supported",
            ],
            id="OAuth 2 refused, not ignored",
        ),
        pytest.param(
            {**HTTP, "activationValue": "x"},
            ["activationValue: 'x' is not a valid number"],
            id="bad activation",
        ),
    ],
)
def test_invalid_metadata(metadata: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata(metadata)
    message = str(err.value)
    for problem in problems:
        assert problem in message
    assert all(p.startswith("rabbitmq: ") for p in err.value.problems)


def test_every_problem_at_once_and_no_secret_anywhere() -> None:
    secrets = ["uri-pass-1f2e", "meta-pass-3d4c", "key-material-secret", "key-pass-5b6a"]
    metadata = {
        "backend": "rabbitmq",
        "host": f"amqp://keda:{secrets[0]}@rabbit:5672/vh",
        "mode": "DeliverGetRate",
        "value": "zero",
        "activationValue": "-",
        "useRegex": "true",
        "excludeUnacknowledged": "true",
        "timeout": "100",
        "pageSize": "-1",
        "operation": "mean",
        "password": secrets[1],
        "key": f"garbage {secrets[2]}",
        "keyPassword": secrets[3],
        "tls": "enable",
    }
    with pytest.raises(MetadataError) as err:
        parse_metadata(metadata)
    problems = err.value.problems
    for expected in (
        "missing required parameter queueName",
        "value: 'zero' is not a valid number",
        "activationValue: '-' is not a valid number",
        "pageSize: '-1' must be 1 or greater",
        "operation: 'mean' must be one of [sum, max, avg]",
        "key: value is not PEM",
        "username and password must be given together",
        "cert and key must be given together",
        "tls: 'enable' needs an amqps:// or https:// host, not amqp://",
        "mode: 'DeliverGetRate' needs message rates",
        "useRegex: true needs the management API",
        "excludeUnacknowledged: true needs the management API",
        "timeout applies to the management API only",
    ):
        assert any(expected in p for p in problems), (expected, problems)
    message = str(err.value)
    for secret in secrets:
        assert secret not in message


def test_host_is_quoted_with_its_password_masked() -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({**AMQP, "host": "ftp://keda:hunter2-pw@rabbit/"})
    assert "hunter2-pw" not in str(err.value)
    assert "'ftp://keda:***@rabbit/'" in str(err.value)


def test_repr_hides_every_secret() -> None:
    trigger = parse_metadata(
        {
            **AMQP,
            "host": "amqps://keda:uri-pw-aa11@rabbit/vh",
            "tls": "enable",
            "cert": PEM_CERT,
            "key": PEM_KEY,
            "keyPassword": "kp-bb22",
        }
    )
    shown = repr(trigger) + str(trigger) + trigger.resource_label() + trigger.metric_name()
    for secret in ("uri-pw-aa11", "key-material-secret", "kp-bb22", "BEGIN"):
        assert secret not in shown
    assert trigger.connection.password == "uri-pw-aa11"
    assert "rabbit" in shown
    # credentials are part of the identity (two users never share a connection)
    other = parse_metadata(
        {
            **AMQP,
            "host": "amqps://keda:other-pw@rabbit/vh",
            "tls": "enable",
            "cert": PEM_CERT,
            "key": PEM_KEY,
        }
    )
    assert other.connection != trigger.connection
    assert "other-pw" not in trigger.connection.where + other.connection.where


@pytest.mark.parametrize(
    ("queue", "name"),
    [
        ("jobs", "rabbitmq-jobs"),
        ("Orders.High", "rabbitmq-orders-high"),
        ("orders-.*", "rabbitmq-orders---2a"),  # KEDA: QueryEscape then NormalizeString
        ("a b/c", "rabbitmq-a-b-2fc"),
        ("é", "rabbitmq--c3-a9"),
    ],
)
def test_metric_name_is_kedas_normalised(queue: str, name: str) -> None:
    trigger = parse_metadata({**HTTP, "queueName": queue})
    assert trigger.metric_name() == name
    assert trigger.target == 20.0


def test_options_do_not_split_the_coalescing_key() -> None:
    variants = [
        {},
        {"mode": "MessageRate", "value": "3"},
        {"mode": "QueueLength", "value": "5", "activationValue": "2"},
        {"excludeUnacknowledged": "true"},
        {"operation": "max"},
        {"queueLength": "9"},
    ]
    keys = {
        (t.backend, t.connection, t.resource)
        for t in (parse_metadata({**HTTP, **v}) for v in variants)
    }
    assert len(keys) == 1
    # ...but what is read does
    assert parse_metadata({**HTTP, "vhostName": "x"}).resource != parse_metadata(HTTP).resource
    assert parse_metadata({**HTTP, "timeout": "9"}).connection != parse_metadata(HTTP).connection


def test_backend_builds_a_client_per_protocol_without_io() -> None:
    backend = RabbitMQBackend(timeout=1.0)
    assert backend.name == "rabbitmq"
    amqp = backend.connect(parse_metadata(AMQP).connection)
    http = backend.connect(parse_metadata(HTTP).connection)
    assert type(amqp).__name__ == "AmqpClient"
    assert type(http).__name__ == "HttpClient"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1500", 1.5), ("3000", 3.0), ("2s", 2.0), ("250ms", 0.25), ("1m30s", 90.0), ("1.5s", 1.5)],
)
def test_timeout_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["-5", "0", "0s", "5 s", "s", "5x", "1h-2m"])
def test_bad_timeout_durations(text: str) -> None:
    with pytest.raises(InvalidValue):
        duration_seconds(text)


# --- evaluation -------------------------------------------------------------------------------


def queue(
    messages: int = 0, ready: int | None = None, publish: float = 0.0, deliver: float = 0.0
) -> dict[str, float | str]:
    ready = messages if ready is None else ready
    return {
        "queue": "q",
        "messages": float(messages),
        "messages_ready": float(ready),
        "messages_unacknowledged": float(messages - ready),
        "publish_rate": publish,
        "deliver_get_rate": deliver,
    }


def measured(*items: Mapping[str, float | str]) -> Measurement:
    return Measurement(sum(float(i["messages"]) for i in items), {}, tuple(items))


def http_trigger(
    mode: str = "QueueLength", activation: float = 0.0, /, **extra: str
) -> RabbitTrigger:
    return parse_metadata(
        {**HTTP, "mode": mode, "value": "10", "activationValue": str(activation), **extra}
    )


M, P, D = "messages", "publish", "deliver"


@pytest.mark.parametrize(
    ("mode", "activation", "facts", "value", "active"),
    [
        # QueueLength: M, active iff M > A
        ("QueueLength", 0, {M: 8}, 8.0, True),
        ("QueueLength", 8, {M: 8}, 8.0, False),
        ("QueueLength", 0, {M: 0}, 0.0, False),
        # MessageRate: P, active iff P > A or M > A
        ("MessageRate", 2, {M: 3, P: 0.0}, 0.0, True),
        ("MessageRate", 2, {M: 0, P: 2.5}, 2.5, True),
        ("MessageRate", 2, {M: 2, P: 2.0}, 2.0, False),
        # DeliverGetRate: D, active iff D > A
        ("DeliverGetRate", 3, {M: 100, D: 3.0}, 3.0, False),
        ("DeliverGetRate", 3, {D: 3.5}, 3.5, True),
        # PublishedToDeliveredRatio: P/D; A when P > 0 and D == 0; else 0
        ("PublishedToDeliveredRatio", 1, {P: 10.0, D: 5.0}, 2.0, True),
        ("PublishedToDeliveredRatio", 1, {P: 4.0, D: 8.0}, 0.5, False),
        ("PublishedToDeliveredRatio", 1.5, {P: 4.0, D: 0.0}, 1.5, True),
        ("PublishedToDeliveredRatio", 0, {P: 4.0, D: 0.0}, 0.0, True),
        ("PublishedToDeliveredRatio", 1, {P: 0.0, D: 0.0}, 0.0, False),
        ("PublishedToDeliveredRatio", 0, {P: 0.0, D: 6.0}, 0.0, False),
        # ExpectedQueueConsumptionTime: 0 if M == 0; A if D == 0; else (P - D)/D + M/D
        ("ExpectedQueueConsumptionTime", 5, {M: 0, P: 9.0, D: 0.0}, 0.0, False),
        ("ExpectedQueueConsumptionTime", 0, {M: 0, P: 9.0, D: 3.0}, 0.0, False),
        ("ExpectedQueueConsumptionTime", 7, {M: 10, D: 0.0}, 7.0, True),
        ("ExpectedQueueConsumptionTime", 2, {M: 10, P: 5.0, D: 5.0}, 2.0, False),
        ("ExpectedQueueConsumptionTime", 1, {M: 10, P: 2.0, D: 5.0}, 1.4, True),
        ("ExpectedQueueConsumptionTime", 1, {M: 10, P: 20.0, D: 5.0}, 5.0, True),
    ],
)
def test_per_mode_metric_and_activity(
    mode: str, activation: float, facts: dict[str, float], value: float, active: bool
) -> None:
    trigger = http_trigger(mode, activation)
    item = queue(int(facts.get(M, 0)), publish=facts.get(P, 0.0), deliver=facts.get(D, 0.0))
    evaluation = trigger.evaluate(measured(item))
    assert evaluation.value == pytest.approx(value)
    assert evaluation.active is active


def test_unacknowledged_counted_over_http_unless_excluded() -> None:
    facts = measured(queue(messages=8, ready=5))
    assert http_trigger().evaluate(facts).value == 8.0
    assert http_trigger(excludeUnacknowledged="true").evaluate(facts).value == 5.0


def test_amqp_counts_ready_messages_only() -> None:
    trigger = parse_metadata({**AMQP, "activationValue": "4"})
    facts = Measurement(5.0, {"messages_ready": 5}, ({"queue": "q", "messages_ready": 5.0},))
    assert trigger.evaluate(facts).value == 5.0
    assert trigger.evaluate(facts).active is True


@pytest.mark.parametrize(
    ("operation", "messages", "publish", "deliver"),
    [
        ("sum", 16.0, 7.5, 3.0),
        ("max", 9.0, 4.5, 2.0),
        ("avg", 5.0, 2.5, 1.0),  # counts: integer division, as KEDA (16 // 3); rates: float
    ],
)
def test_operation_over_matched_queues(
    operation: str, messages: float, publish: float, deliver: float
) -> None:
    facts = measured(
        queue(2, publish=1.0, deliver=0.5),
        queue(5, publish=2.0, deliver=0.5),
        queue(9, publish=4.5, deliver=2.0),
    )
    extra = {"operation": operation, "useRegex": "true"}
    assert http_trigger(**extra).evaluate(facts).value == messages
    assert http_trigger("MessageRate", **extra).evaluate(facts).value == pytest.approx(publish)
    assert http_trigger("DeliverGetRate", **extra).evaluate(facts).value == pytest.approx(deliver)


@pytest.mark.parametrize("operation", ["sum", "max", "avg"])
def test_no_matched_queue_is_all_zeros(operation: str) -> None:
    for mode in ("QueueLength", "MessageRate", "DeliverGetRate", "PublishedToDeliveredRatio"):
        evaluation = http_trigger(mode, useRegex="true", operation=operation).evaluate(measured())
        assert evaluation.value == 0.0
        assert evaluation.active is False


def test_avg_of_ready_counts_uses_integer_division() -> None:
    facts = measured(queue(3, ready=1), queue(4, ready=2))
    trigger = http_trigger(operation="avg", useRegex="true", excludeUnacknowledged="true")
    assert trigger.evaluate(facts).value == 1.0  # (1 + 2) // 2


# --- TLS material -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate and its key encrypted with ``key-pass-9z``, as PEM text."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("pem")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-days",
            "1",
            "-subj",
            "/CN=kqs-test",
            "-passout",
            "pass:key-pass-9z",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return (folder / "cert.pem").read_text(), (folder / "key.pem").read_text()


def tls_connection(cert: str, key: str, key_password: str) -> RabbitConnection:
    trigger = parse_metadata(
        {
            **HTTP,
            "host": "https://rabbit.svc:15671/",
            "tls": "enable",
            "ca": cert,
            "cert": cert,
            "key": key,
            "keyPassword": key_password,
        }
    )
    return trigger.connection


def test_tls_material_loads_from_pem_and_leaves_no_file(
    client_pem: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert, key = client_pem
    context = _ssl_context(tls_connection(cert, key, "key-pass-9z"))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert any(c.get("subject") for c in context.get_ca_certs())  # system roots + our CA
    assert list(tmp_path.iterdir()) == []  # the key was written only for the load


def test_wrong_key_password_is_invalid_metadata_without_secrets(
    client_pem: tuple[str, str],
) -> None:
    cert, key = client_pem
    with pytest.raises(MetadataError) as err:
        _ssl_context(tls_connection(cert, key, "not-the-pass-7y"))
    assert "could not be loaded" in str(err.value)
    assert "not-the-pass-7y" not in str(err.value)
    assert "ENCRYPTED" not in str(err.value)


def test_unsafe_ssl_turns_verification_off() -> None:
    trigger = parse_metadata({**HTTP, "host": "https://rabbit.svc/", "unsafeSsl": "true"})
    context = _ssl_context(trigger.connection)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
