"""backend: rabbitmq metadata, table-driven as KEDA's rabbitmq_scaler_test.go.

Names, defaults, URI handling (vhost from the path, credentials split out), KEDA's cross-field
rules, every problem in one error. Secrets, metric names and what the declarations give the rest
of the scaler are in test_rabbitmq_backend.py; evaluation in test_rabbitmq_evaluation.py; KEDA's
own test table in test_rabbitmq_keda.py.
"""

from __future__ import annotations

import pytest

from scaler.backends.rabbitmq import RabbitConnection, RabbitQueue, RabbitTrigger
from scaler.errors import MetadataError
from tests.rabbitmq_support import (
    AMQP,
    HTTP,
    PEM_CERT,
    PEM_KEY,
    amqp_conn,
    http_conn,
    parse_metadata,
)

Expected = tuple[RabbitConnection, RabbitQueue, str, float, float, str, bool]


def expect(
    connection: RabbitConnection,
    resource: RabbitQueue,
    mode: str = "QueueLength",
    value: float = 20.0,
    activation: float = 0.0,
    operation: str = "sum",
    exclude_unacknowledged: bool = False,
) -> Expected:
    return connection, resource, mode, value, activation, operation, exclude_unacknowledged


def seen(trigger: RabbitTrigger) -> Expected:
    p = trigger.params
    return (
        trigger.connection,
        trigger.resource,
        trigger.mode,
        trigger.value,
        p.activation_value,
        p.operation,
        p.exclude_unacknowledged,
    )


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param(
            AMQP,
            expect(amqp_conn(), RabbitQueue("orders", "jobs")),
            id="AMQP defaults: QueueLength, value 20, activation 0, vhost from the path",
        ),
        pytest.param(
            {**AMQP, "host": "amqp://rabbit.svc"},
            expect(amqp_conn(username=None, password=None), RabbitQueue("/", "jobs")),
            id="no path: vhost /, default port 5672, no credentials",
        ),
        pytest.param(
            {**AMQP, "host": "amqp://user:pw@rabbit.svc:5672/%2F"},
            expect(amqp_conn(), RabbitQueue("/", "jobs")),
            id="%2F is the vhost /",
        ),
        pytest.param(
            {**AMQP, "host": "amqps://user:p%40ss@rabbit.svc/a%2Fb"},
            expect(
                amqp_conn(scheme="amqps", port=5671, password="p@ss"),
                RabbitQueue("a/b", "jobs"),
            ),
            id="amqps default port 5671; userinfo and vhost percent-decoded",
        ),
        pytest.param(
            {**AMQP, "vhostName": "other", "username": "keda", "password": "secret2"},
            expect(
                amqp_conn(username="keda", password="secret2"),
                RabbitQueue("other", "jobs"),
            ),
            id="vhostName and username/password override the URI",
        ),
        pytest.param(
            {**AMQP, "queueLength": "7", "activationValue": "2.5"},
            expect(amqp_conn(), RabbitQueue("orders", "jobs"), "QueueLength", 7.0, 2.5),
            id="deprecated queueLength = mode QueueLength + value",
        ),
        pytest.param(
            {**AMQP, "mode": "QueueLength", "value": "0.5", "protocol": "amqp"},
            expect(amqp_conn(), RabbitQueue("orders", "jobs"), value=0.5),
            id="explicit mode and fractional value",
        ),
        pytest.param(
            {**AMQP, "operation": "max", "pageSize": "3"},
            expect(amqp_conn(), RabbitQueue("orders", "jobs"), operation="max"),
            id="operation/pageSize accepted with AMQP (no effect, as in KEDA)",
        ),
        pytest.param(
            HTTP,
            expect(http_conn(), RabbitQueue("orders", "jobs")),
            id="HTTP: the last path segment is the vhost",
        ),
        pytest.param(
            {**HTTP, "host": "http://user:pw@rabbit.svc:15672"},
            expect(http_conn(), RabbitQueue("/", "jobs")),
            id="HTTP without a path: vhost /",
        ),
        pytest.param(
            {**HTTP, "host": "http://user:pw@rabbit.svc:15672/"},
            expect(http_conn(), RabbitQueue("/", "jobs")),
            id="HTTP path / : vhost /",
        ),
        pytest.param(
            {**HTTP, "host": "https://user:pw@rabbit.svc/mgmt/api-prefix/%2F"},
            expect(
                http_conn(scheme="https", port=443, path_prefix="/mgmt/api-prefix"),
                RabbitQueue("/", "jobs"),
            ),
            id="HTTPS default port 443; earlier segments are a path prefix",
        ),
        pytest.param(
            {**HTTP, "vhostName": "/"},
            expect(http_conn(), RabbitQueue("/", "jobs")),
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
            expect(
                http_conn(timeout=1.5),
                RabbitQueue("orders", "^jobs-.*$", use_regex=True, page_size=500),
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
            expect(http_conn(), RabbitQueue("orders", "jobs")),
            id="pageSize without useRegex does not split the resource",
        ),
        pytest.param(
            {**HTTP, "timeout": "2s"},
            expect(http_conn(timeout=2.0), RabbitQueue("orders", "jobs")),
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
            expect(http_conn(), RabbitQueue("orders", "jobs")),
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
            expect(
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
                RabbitQueue("orders", "jobs"),
            ),
            id="TLS with CA, client certificate and key",
        ),
    ],
)
def test_valid_metadata(metadata: dict[str, str], expected: Expected) -> None:
    assert seen(parse_metadata(metadata)) == expected


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
