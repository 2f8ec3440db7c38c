"""backend: rabbitmq beyond the tables: no secret in a message or a repr, KEDA's metric names,
what splits the coalescing key, a client per protocol, the stricter host rule, the refused token
authentication keys, and what the declarations give the rest of the scaler."""

from __future__ import annotations

import grpc
import pytest

from scaler.backends import BACKENDS, quiet_loggers
from scaler.backends.rabbitmq import RabbitMQBackend
from scaler.backends.rabbitmq.amqp import AmqpClient
from scaler.backends.rabbitmq.management import HttpClient
from scaler.errors import MetadataError
from scaler.values import InvalidValue, duration_seconds
from tests.conftest import ref
from tests.rabbitmq_support import AMQP, HTTP, PEM_CERT, PEM_KEY, parse_metadata


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
        # KEDA: QueryEscape, then NormalizeString (only / . : % ( ) become -; case is kept)
        ("jobs", "rabbitmq-jobs"),
        ("Orders.High", "rabbitmq-Orders-High"),
        ("orders-.*", "rabbitmq-orders---2A"),
        ("a b/c", "rabbitmq-a+b-2Fc"),
        ("é", "rabbitmq--C3-A9"),
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
    keys = {(t.connection, t.resource) for t in (parse_metadata({**HTTP, **v}) for v in variants)}
    assert len(keys) == 1
    # ...but what is read does
    assert parse_metadata({**HTTP, "vhostName": "x"}).resource != parse_metadata(HTTP).resource
    assert parse_metadata({**HTTP, "timeout": "9"}).connection != parse_metadata(HTTP).connection


def test_backend_builds_a_client_per_protocol_without_io() -> None:
    backend = RabbitMQBackend(timeout=1.0)
    assert backend.name == "rabbitmq"
    assert isinstance(backend.connect(parse_metadata(AMQP).connection), AmqpClient)
    assert isinstance(backend.connect(parse_metadata(HTTP).connection), HttpClient)


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


@pytest.mark.parametrize("host", ["amqp://", "amqps://", "http://", "https://", "http://:15672/vh"])
def test_a_host_that_names_no_host_is_refused(host: str) -> None:
    # stricter than KEDA, which accepts these and fails only when it connects
    with pytest.raises(MetadataError) as err:
        parse_metadata({**AMQP, "host": host})
    assert err.value.problems == (f"rabbitmq: host: {host!r} has no host name",)


@pytest.mark.parametrize("host", ["http://", "amqp://"])
async def test_a_host_that_names_no_host_is_invalid_argument_at_get_metric_spec(
    serve, host: str
) -> None:
    running = await serve()
    metadata = {"backend": "rabbitmq", "host": host, "queueName": "jobs"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await running.stub.GetMetricSpec(ref(metadata))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"host: {host!r} has no host name" in (err.value.details() or "")


def test_a_bad_host_is_named_by_the_key_it_came_under() -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({"backend": "rabbitmq", "hostFromEnv": "amqp://", "queueName": "q"})
    assert err.value.problems == ("rabbitmq: hostFromEnv: 'amqp://' has no host name",)


@pytest.mark.parametrize(
    "key",
    [
        "workloadIdentityResource",
        "oauthTokenURI",
        "clientID",
        "clientSecret",
        "scopes",
        "endpointParams",
    ],
)
def test_token_authentication_keys_are_refused_not_ignored(key: str) -> None:
    with pytest.raises(MetadataError) as err:
        parse_metadata({**HTTP, key: "token-secret-4f3e"})
    assert err.value.problems == (
        f"rabbitmq: {key} is not supported (Azure workload identity and OAuth 2 are not)",
    )
    assert "token-secret-4f3e" not in str(err.value)


def test_what_the_declarations_give_the_rest_of_the_scaler() -> None:
    # the keys a connection profile supplies (and metadata beside it may not set)
    assert RabbitMQBackend.connection_keys() == {
        "host",
        "username",
        "password",
        "tls",
        "unsafeSsl",
        "ca",
        "cert",
        "key",
        "keyPassword",
    }
    secrets = RabbitMQBackend.secret_keys()
    for key in ("password", "key", "keyPassword", "clientSecret"):
        assert {key, f"{key}FromEnv"} <= secrets
    # host is shown, with its password masked: never a secret as a whole
    assert "host" not in secrets
    assert RabbitMQBackend.watch_interval == 0.05
    assert {"aiormq", "aio_pika"} <= set(quiet_loggers())
    assert RabbitMQBackend in BACKENDS
