"""KEDA v2.20.2's own RabbitMQ test tables (pkg/scalers/rabbitmq_scaler_test.go), row by row:
what KEDA accepts we accept, what it refuses we refuse, except where a row says why not.

How KEDA's inputs arrive here: its resolved env ``myHostSecret`` is forwarded as the value of
``hostFromEnv`` (KEDA sends an external scaler the resolved value under the ``FromEnv`` name),
and its ``authParams`` come as metadata, since KEDA forwards no TriggerAuthentication to an
external scaler. Many rows name a bare ``http://`` or ``amqps://`` host; KEDA parses those and
fails only when it connects, we refuse them (:func:`test_kedas_hostless_hosts_are_refused_here`),
so :func:`named` gives them a host name to let each row test what it was written for.

Deliberate differences, each marked on its rows:

* a ``host`` that is no URI naming a host is refused at GetMetricSpec, not at connect time;
* ``protocol`` must agree with the scheme of ``host`` (KEDA would speak HTTP to an amqp:// URL
  on every poll);
* Azure workload identity and OAuth 2 are not supported: refused, never silently ignored;
* ``tls: enable`` needs an amqps:// or https:// host and ``ca``/``cert``/``key`` must be PEM,
  checked at GetMetricSpec (KEDA's TLS rows use an amqp:// host and stand-ins such as ``caaa``,
  which KEDA accepts when parsing and refuses when it builds the scaler).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from scaler.backends.rabbitmq.amqp import sasl_external
from scaler.errors import MetadataError
from scaler.values import boolean
from tests.rabbitmq_support import PEM_CERT, PEM_KEY, parse_metadata

#: KEDA's sampleRabbitMqResolvedEnv[host]
RESOLVED_HOST = "amqp://user:sercet@somehost.com:5236/vhost"
FROM_ENV = {"hostFromEnv": RESOLVED_HOST}

STRICTER_HOST = "a host that is no URI is refused at GetMetricSpec"
PROTOCOL_VS_SCHEME = "protocol must agree with the scheme of host"
NO_TOKEN_AUTH = "workload identity and OAuth 2 are not supported"

_BARE = re.compile(r"[a-z]+://")


def named(metadata: dict[str, str]) -> dict[str, str]:
    """The row with a host name in a bare ``scheme://`` host."""
    return {k: v + "rabbit.svc" if _BARE.fullmatch(v) else v for k, v in metadata.items()}


def row(metadata: dict[str, str], keda: bool, ours: bool | None = None, why: str = "") -> Any:
    """One of KEDA's rows: its verdict (True: accepted), and ours where it differs, and why."""
    assert (ours is None) == (why == "")
    verdict = keda if ours is None else ours
    return pytest.param({"backend": "rabbitmq", **metadata}, verdict, id=why or None)


def accepted(metadata: dict[str, str]) -> bool:
    try:
        parse_metadata(metadata)
    except MetadataError:
        return False
    return True


# testRabbitMQMetadata, in KEDA's order
QS = {"queueName": "sample"}
PARSE_ROWS = [
    row({}, False),  # nothing passed
    row({"queueLength": "10", **QS, **FROM_ENV}, True),  # properly formed metadata
    row({"queueLength": "AA", **QS, **FROM_ENV}, False),  # malformed queueLength
    row({"queueLength": "AA", **QS}, False),  # missing host
    row({"queueLength": "10", **FROM_ENV}, False),  # missing queueName
    row({"queueLength": "10", **FROM_ENV, "host": RESOLVED_HOST}, False),  # host in authParams
    # properly formed metadata with http protocol (the host is the env var's name, no URI)
    row(
        {"queueLength": "10", **QS, "host": "myHostSecret", "protocol": "http"},
        True,
        False,
        STRICTER_HOST,
    ),
    row({"queueLength": "10", "queueName": "namespace/name", **FROM_ENV}, True),  # slashes
    row({"vhostName": "myVhost", "queueName": "namespace/name", **FROM_ENV}, True),
    row({"vhostName": "", "queueName": "namespace/name", **FROM_ENV}, True),  # vhost empty
    # protocol http in authParams, with the amqp:// host of the resolved env
    row({**QS, **FROM_ENV, "protocol": "http"}, True, False, PROTOCOL_VS_SCHEME),
    row({**QS, "host": "something://"}, False),  # auto protocol and a bad URL
    row({**QS, "host": "http://"}, True),  # auto protocol and an HTTP URL
    row({**QS, "host": "https://"}, True),  # auto protocol and an HTTPS URL
    row({"queueLength": "10", "mode": "QueueLength", **QS, "host": "https://"}, False),
    row({"queueLength": "10", "value": "20", **QS, "host": "https://"}, False),
    row(
        {"queueLength": "10", "mode": "QueueLength", "value": "20", **QS, "host": "https://"}, False
    ),
    row({"mode": "QueueLength", **QS, "host": "https://"}, False),  # only mode
    row({"value": "20", **QS, "host": "https://"}, False),  # only value
    row({"mode": "QueueLength", "value": "20", **QS, "host": "https://"}, True),
    row({"mode": "Feelings", "value": "20", **QS, "host": "https://"}, False),  # invalid mode
    row({"mode": "QueueLength", "value": "lots", **QS, "host": "https://"}, False),
    row({"mode": "QueueLength", "value": "20", **QS, "host": "amqps://"}, True),
    row({"mode": "MessageRate", "value": "1000", **QS, "host": "amqps://"}, False),
    row({"mode": "MessageRate", "value": "1000", **QS, "host": "amqp://"}, False),
    row({"mode": "MessageRate", "value": "1000", **QS, "host": "http://"}, True),
    row({"mode": "MessageRate", "value": "1000", **QS, "host": "https://"}, True),
    row({"mode": "DeliverGetRate", "value": "1000", **QS, "host": "amqps://"}, False),
    row({"mode": "DeliverGetRate", "value": "1000", **QS, "host": "amqp://"}, False),
    row({"mode": "DeliverGetRate", "value": "1000", **QS, "host": "http://"}, True),
    row({"mode": "DeliverGetRate", "value": "1000", **QS, "host": "https://"}, True),
    row({**QS, "host": "amqps://", "useRegex": "true"}, False),
    row({**QS, "host": "http://", "useRegex": "true"}, True),
    row(
        {"mode": "MessageRate", "value": "1000", **QS, "host": "http://", "useRegex": "true"}, True
    ),
    row(
        {"mode": "DeliverGetRate", "value": "1000", **QS, "host": "http://", "useRegex": "true"},
        True,
    ),
    row(
        {"mode": "QueueLength", "value": "1000", **QS, "host": "http://", "useRegex": "true"}, True
    ),
    row({"mode": "QueueLength", "value": "1000", **QS, "host": "http://", "timeout": "1000"}, True),
    row({"mode": "QueueLength", "value": "1000", **QS, "host": "http://", "timeout": "-10"}, False),
    row(
        {"mode": "QueueLength", "value": "1000", **QS, "host": "http://", "timeout": "error"}, False
    ),
    row({"mode": "QueueLength", "value": "1000", **QS, "host": "amqp://", "timeout": "10"}, False),
    *(
        row(
            {
                "mode": mode,
                "value": "1000",
                **QS,
                "host": "http://",
                "useRegex": "true",
                "pageSize": size,
            },
            ok,
        )
        for mode in ("MessageRate", "DeliverGetRate")
        for size, ok in (("100", True), ("-1", False), ("a", False))
    ),
    row({"activationValue": "10", "queueLength": "20", **QS, **FROM_ENV}, True),
    row({"activationValue": "AA", "queueLength": "10", **QS, **FROM_ENV}, False),
    row(
        {
            "mode": "QueueLength",
            "value": "1000",
            **QS,
            "host": "http://",
            "useRegex": "true",
            "excludeUnacknowledged": "true",
        },
        True,
    ),
    row(
        {
            "mode": "QueueLength",
            "value": "1000",
            **QS,
            "host": "amqp://",
            "useRegex": "true",
            "excludeUnacknowledged": "true",
        },
        False,
    ),
    row({**QS, "host": "https://", "unsafeSsl": "true"}, True),
    row({**QS, "host": "https://", "unsafeSsl": "random"}, False),
]


@pytest.mark.parametrize(("metadata", "verdict"), PARSE_ROWS)
def test_kedas_parse_table(metadata: dict[str, str], verdict: bool) -> None:
    assert accepted(named(metadata)) is verdict
    if verdict and "unsafeSsl" in metadata:
        trigger = parse_metadata(named(metadata))
        assert trigger.connection.unsafe_ssl is boolean(metadata["unsafeSsl"])


def test_kedas_hostless_hosts_are_refused_here() -> None:
    rows = [(m["host"], ok) for m, ok in (p.values for p in PARSE_ROWS) if "host" in m]
    bare = [(host, ok) for host, ok in rows if _BARE.fullmatch(host)]
    # KEDA accepts rows with three of them
    assert {host for host, ok in bare if ok} == {"http://", "https://", "amqps://"}
    for host in {host for host, _ in bare} | {"amqp://"}:
        with pytest.raises(MetadataError, match=r"has no host name|must start with"):
            parse_metadata({"backend": "rabbitmq", **QS, "host": host})


# testRabbitMQAuthParamData without its TLS rows (below), authParams given as metadata
AUTH_ROWS = [
    row({**QS, **FROM_ENV, "username": "user", "password": "PASSWORD"}, True),
    row({**QS, **FROM_ENV, "username": "user"}, False),  # username but no password
    row({**QS, **FROM_ENV, "password": "PASSWORD"}, False),  # password but no username
    row({**QS, **FROM_ENV, "vhostName": "myVhost"}, True),
    row({**QS, **FROM_ENV, "vhostName": ""}, True),
    # credentials from env: KEDA's resolved values of myUsernameSecret and myPasswordSecret
    row({**QS, **FROM_ENV, "usernameFromEnv": "user", "passwordFromEnv": "Password"}, True),
    row({**QS, **FROM_ENV, "usernameFromEnv": "user"}, False),
    row({**QS, **FROM_ENV, "passwordFromEnv": "Password"}, False),
    # workload identity over HTTP (with an Azure pod identity in KEDA), then over AMQP
    row(
        {**QS, **FROM_ENV, "protocol": "http", "workloadIdentityResource": "id"},
        True,
        False,
        NO_TOKEN_AUTH,
    ),
    row({**QS, **FROM_ENV, "protocol": "amqp", "workloadIdentityResource": "id"}, False),
]
OAUTH = {
    "oauthTokenURI": "https://oauth.example.com/token",
    "clientID": "my-client",
    "clientSecret": "my-secret",
}
HTTP_LOCAL = {**QS, "host": "http://localhost:15672", "protocol": "http"}
OAUTH_ROWS = [
    row({**HTTP_LOCAL, **OAUTH}, True, False, NO_TOKEN_AUTH),  # minimal config
    row(
        {
            **HTTP_LOCAL,
            "host": "https://localhost:15672",
            **OAUTH,
            "scopes": "rabbitmq.read,rabbitmq.write",
        },
        True,
        False,
        NO_TOKEN_AUTH,
    ),
    row(
        {**HTTP_LOCAL, **OAUTH, "endpointParams": "audience=rabbitmq&resource=api"},
        True,
        False,
        NO_TOKEN_AUTH,
    ),
    row(
        {**HTTP_LOCAL, "host": "https://localhost:15672", **OAUTH, "tls": "enable", "ca": PEM_CERT},
        True,
        False,
        NO_TOKEN_AUTH,
    ),
    row({**QS, "host": "amqp://localhost:5672", "protocol": "amqp", **OAUTH}, False),
    row({**HTTP_LOCAL, **OAUTH, "username": "user", "password": "pass"}, False),  # + basic auth
    row({**HTTP_LOCAL, **OAUTH, "workloadIdentityResource": "rabbitmq-resource-id"}, False),
    row(
        {**HTTP_LOCAL, "clientID": "my-client", "clientSecret": "my-secret"}, False
    ),  # no token URI
    row(
        {**HTTP_LOCAL, "oauthTokenURI": OAUTH["oauthTokenURI"], "clientSecret": "my-secret"}, False
    ),
    row({**HTTP_LOCAL, "oauthTokenURI": OAUTH["oauthTokenURI"], "clientID": "my-client"}, False),
]


@pytest.mark.parametrize(("metadata", "verdict"), [*AUTH_ROWS, *OAUTH_ROWS])
def test_kedas_auth_param_table(metadata: dict[str, str], verdict: bool) -> None:
    assert accepted(metadata) is verdict


# testRabbitMQAuthParamData's TLS rows: (authParams, KEDA's verdict)
TLS_ROWS = [
    ({"tls": "enable", "ca": "caaa", "cert": "ceert", "key": "keey"}, True),
    ({"tls": "enable", "cert": "ceert", "key": "keey"}, True),  # assumed public CA
    ({"tls": "enable", "cert": "ceert", "key": "keey", "keyPassword": "keeyPassword"}, True),
    ({"tls": "enable", "ca": "caaa"}, True),  # CA only
    ({"tls": "enable", "ca": "caaa", "key": "kee"}, False),  # missing cert
    ({"tls": "enable", "ca": "caaa", "cert": "ceert"}, False),  # missing key
    ({"tls": "yes", "ca": "caaa", "cert": "ceert", "key": "kee"}, False),  # TLS invalid
]
_PEM = {"caaa": PEM_CERT, "ceert": PEM_CERT, "keey": PEM_KEY, "kee": PEM_KEY}


@pytest.mark.parametrize(("auth", "keda"), TLS_ROWS)
def test_kedas_tls_rows_with_a_tls_host_and_pem(auth: dict[str, str], keda: bool) -> None:
    tls_host = {"hostFromEnv": RESOLVED_HOST.replace("amqp://", "amqps://")}
    metadata = {
        "backend": "rabbitmq",
        **QS,
        **tls_host,
        **{k: _PEM.get(v, v) for k, v in auth.items()},
    }
    assert accepted(metadata) is keda
    if keda:
        connection = parse_metadata(metadata).connection
        given = (metadata.get(k) for k in ("ca", "cert", "key", "keyPassword"))
        seen = (connection.ca, connection.cert, connection.key, connection.key_password)
        assert tuple(v.strip() if v else None for v in given) == seen


@pytest.mark.parametrize(("auth", "keda"), TLS_ROWS)
def test_kedas_tls_stand_ins_are_refused_here(auth: dict[str, str], keda: bool) -> None:
    # an amqp:// host with tls: enable, and stand-ins for PEM: both refused at GetMetricSpec
    with pytest.raises(MetadataError):
        parse_metadata({"backend": "rabbitmq", **QS, **FROM_ENV, **auth})


@pytest.mark.parametrize(
    ("metadata", "accepted_here"),
    [
        row({**QS, **FROM_ENV}, True),  # testDefaultQueueLength: use default queueLength
        row({**QS, **FROM_ENV, "protocol": "http"}, True, False, PROTOCOL_VS_SCHEME),
    ],
)
def test_kedas_default_queue_length(metadata: dict[str, str], accepted_here: bool) -> None:
    if accepted_here:
        assert parse_metadata(metadata).target == 20
    else:
        assert not accepted(metadata)


@pytest.mark.parametrize(
    ("queue", "name"),
    # rabbitMQMetricIdentifiers (KEDA prefixes s<index>- itself)
    [("sample", "rabbitmq-sample"), ("namespace/name", "rabbitmq-namespace-2Fname")],
)
def test_kedas_metric_names(queue: str, name: str) -> None:
    metadata = {"backend": "rabbitmq", "queueLength": "10", "queueName": queue, **FROM_ENV}
    assert parse_metadata(metadata).metric_name() == name


ROOT = "/%2F"  # KEDA's rabbitRootVhostPath


@pytest.mark.parametrize(
    ("raw_path", "vhost_name", "vhost_path", "prefix"),
    # getVhostAndPathFromURLTestData: KEDA's vhost is the escaped path segment, ours the name
    [
        ("myVhost", "", "/myVhost", ""),
        ("%2FmyVhost", "", "/%2FmyVhost", ""),
        ("/", "", ROOT, ""),
        ("//", "", ROOT, ""),
        ("/%2F", "", ROOT, ""),
        ("", "", ROOT, ""),
        ("sub1/myVhost", "", "/myVhost", "/sub1"),
        ("sub1/", "overridenVhost", "/overridenVhost", "/sub1"),
        ("myVhost", "overridenVhost", "/overridenVhost", ""),
        ("sub1/%2FmyVhost", "", "/%2FmyVhost", "/sub1"),
        ("sub1/", "", ROOT, "/sub1"),
        ("sub1/", "myVhost", "/myVhost", "/sub1"),
        ("sub1//", "", ROOT, "/sub1"),
        ("sub1/%2F", "", ROOT, "/sub1"),
        ("sub1/sub2/myVhost", "", "/myVhost", "/sub1/sub2"),
        ("sub1/sub2/myVhost", "overridenVhost", "/overridenVhost", "/sub1/sub2"),
        ("sub1/sub2/%2FmyVhost", "", "/%2FmyVhost", "/sub1/sub2"),
        ("sub1/sub2/", "", ROOT, "/sub1/sub2"),
        ("sub1/sub2/", "myVhost", "/myVhost", "/sub1/sub2"),
        ("sub1/myVhost", "overridenVhost", "/overridenVhost", "/sub1"),
        ("sub1/sub2//", "", ROOT, "/sub1/sub2"),
        ("sub1/sub2/%2F", "", ROOT, "/sub1/sub2"),
    ],
)
def test_kedas_vhost_and_path_from_url(
    raw_path: str, vhost_name: str, vhost_path: str, prefix: str
) -> None:
    metadata = {"backend": "rabbitmq", **QS, "host": f"http://rabbit.svc/{raw_path}"}
    if vhost_name:
        metadata["vhostName"] = vhost_name
    trigger = parse_metadata(metadata)
    assert trigger.resource.vhost == unquote(vhost_path.removeprefix("/"))
    assert trigger.connection.path_prefix == prefix


CERT_AND_KEY = {"tls": "enable", "cert": PEM_CERT, "key": PEM_KEY}


@pytest.mark.parametrize(
    ("metadata", "external"),
    # TestRabbitMQBuildAMQPConfig: when AMQP authenticates with the client certificate
    [
        pytest.param({"host": "amqps://rabbit/", **CERT_AND_KEY}, True, id="no credentials"),
        pytest.param(
            {"host": "amqps://rabbit/", "tls": "enable", "username": "user", "password": "pass"},
            False,
            id="TLS with credentials",
        ),
        pytest.param({"host": "amqp://rabbit/"}, False, id="TLS disabled"),
        pytest.param(
            {"host": "amqps://rabbit/", "tls": "enable", "ca": PEM_CERT}, False, id="CA only"
        ),
        pytest.param(
            {"host": "amqps://user:pass@rabbit:5671/", **CERT_AND_KEY},
            False,
            id="credentials in host",
        ),
        pytest.param(
            {"host": "amqps://CN=username@rabbit:5671/", **CERT_AND_KEY},
            True,
            id="a user name alone in host",
        ),
        pytest.param(
            {"host": "amqps://rabbit.namespace.svc:5671/", **CERT_AND_KEY}, True, id="no userinfo"
        ),
    ],
)
def test_kedas_sasl_external_rule(metadata: dict[str, str], external: bool) -> None:
    trigger = parse_metadata({"backend": "rabbitmq", **QS, **metadata})
    assert sasl_external(trigger.connection) is external
