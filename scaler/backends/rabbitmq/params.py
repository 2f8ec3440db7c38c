"""The declared parameters of ``backend: rabbitmq``: KEDA's ``rabbitmq`` trigger keys, each with
KEDA's name, default and meaning, the scaler's own keys (``mode: OldestMessageAge``,
``activeWhileInFlight``), and the names of the modes.

The parser, the connection keys a profile supplies, the fuzz test and the docs table derive from
:class:`RabbitParams`; the cross-field rules are ``trigger.build``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from scaler.backends.base import OPERATIONS
from scaler.backends.rabbitmq.uri import Endpoint, endpoint
from scaler.metadata import declared, param
from scaler.values import (
    at_least_one,
    boolean,
    duration_seconds,
    integer,
    number,
    pem,
    positive,
    resource_name,
)

NAME: Final = "rabbitmq"

QUEUE_LENGTH: Final = "QueueLength"
MESSAGE_RATE: Final = "MessageRate"
DELIVER_GET_RATE: Final = "DeliverGetRate"
PUBLISHED_TO_DELIVERED_RATIO: Final = "PublishedToDeliveredRatio"
EXPECTED_QUEUE_CONSUMPTION_TIME: Final = "ExpectedQueueConsumptionTime"
#: the scaler's own mode (KEDA has none like it): the age of the message at the head of the queue
OLDEST_MESSAGE_AGE: Final = "OldestMessageAge"
#: modes that need rates, which only the management API has
RATE_MODES: Final = frozenset(
    {MESSAGE_RATE, DELIVER_GET_RATE, PUBLISHED_TO_DELIVERED_RATIO, EXPECTED_QUEUE_CONSUMPTION_TIME}
)
MODES: Final = (
    QUEUE_LENGTH,
    MESSAGE_RATE,
    DELIVER_GET_RATE,
    PUBLISHED_TO_DELIVERED_RATIO,
    EXPECTED_QUEUE_CONSUMPTION_TIME,
    OLDEST_MESSAGE_AGE,
)
DEFAULT_VALUE: Final = 20.0
DEFAULT_PAGE_SIZE: Final = 100
#: the shown default of the keys KEDA reads for token-based auth, which are refused here
NOT_SUPPORTED: Final = "not supported"


def _refused(key: str, what: str, *, secret: bool = False) -> Any:
    # Declared so that the docs list them and a trigger using them is refused: silently falling
    # back to basic auth would only end in a confusing 401.
    return param(
        key,
        default=None,
        secret=secret,
        shown_default=NOT_SUPPORTED,
        doc=f"{what} (KEDA's, from a TriggerAuthentication): refused, never ignored",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RabbitParams:
    """KEDA's ``rabbitmq`` trigger parameters."""

    # Required, and None only when refused: the cross-field rules still run then (param()
    # returns a dataclasses.field, and an Endpoint is frozen)
    host: Endpoint | None = param(  # noqa: RUF009
        "host",
        endpoint,
        connection=True,
        endpoint="uri",
        doc="`amqp://user:password@host:5672/vhost`, `amqps://...` (port 5671), "
        "`http://user:password@host:15672/vhost` or `https://...`. AMQP: the path is the "
        "percent-encoded vhost (empty, `/` or `%2F` = `/`). HTTP: the last path segment is the "
        "vhost (empty = `/`), earlier segments a prefix kept in front of `/api` (a management "
        "API behind a path). The password in it is never logged, returned or shown in `repr`",
    )
    protocol: str = param(
        "protocol",
        default="auto",
        choices=("auto", "amqp", "http"),
        doc="`auto` takes it from the scheme of `host`; must agree with the scheme",
    )
    queue_name: str = param(
        "queueName",
        resource_name,
        doc="the queue; with `useRegex`, a regex over queue names (RabbitMQ's, matched "
        "server-side)",
    )
    mode: str | None = param(
        "mode",
        default=None,
        choices=MODES,
        shown_default=f"`{QUEUE_LENGTH}`",
        doc="what is measured; all but `QueueLength` need HTTP. `OldestMessageAge` (the "
        "scaler's own) is the age in seconds of the message at the head of the queue (see "
        "[Scaling on message age](#scaling-on-message-age))",
    )
    value: float | None = param(
        "value",
        number,
        default=None,
        check=positive,
        shown_default="`20` when neither `mode` nor `value` is set",
        doc="target per replica (a number > 0; seconds with `OldestMessageAge`); required when "
        "`mode` is set",
    )
    activation_value: float = param(
        "activationValue", number, default=0.0, doc="activation threshold (see the table below)"
    )
    queue_length: float | None = param(
        "queueLength",
        number,
        default=None,
        check=positive,
        doc="deprecated form of `mode: QueueLength` + `value`; an error together with `mode` "
        "or `value`",
    )
    vhost_name: str | None = param(
        "vhostName",
        default=None,
        shown_default="the vhost of `host`",
        doc="overrides the vhost of `host`",
    )
    use_regex: bool = param(
        "useRegex", boolean, default=False, doc="`queueName` is a regex (HTTP only)"
    )
    operation: str = param(
        "operation",
        default="sum",
        choices=OPERATIONS,
        shown_default=f"`sum`; `max` with `{OLDEST_MESSAGE_AGE}`",
        doc="how the matched queues combine (counts use integer division, as KEDA). Ages "
        "default to `max`, the oldest head of them all; a sum of ages means little",
    )
    page_size: int = param(
        "pageSize",
        integer,
        default=DEFAULT_PAGE_SIZE,
        check=at_least_one,
        doc="queues per page of a regex query (≥ 1); a regex matching more than one page is "
        "`FAILED_PRECONDITION`",
    )
    exclude_unacknowledged: bool = param(
        "excludeUnacknowledged",
        boolean,
        default=False,
        doc="count ready messages only (HTTP only; AMQP always does)",
    )
    active_while_in_flight: bool = param(
        "activeWhileInFlight",
        boolean,
        default=False,
        doc="the scaler's own: also active while messages are delivered and not acknowledged, "
        "whatever the mode, so that KEDA never scales the consumers to zero under running "
        "work (HTTP only; see [Work in flight](#work-in-flight))",
    )
    timeout: float | None = param(
        "timeout",
        duration_seconds,
        default=None,
        shown_default="`--backend-timeout`",
        doc="HTTP request timeout: milliseconds (`1500`) or a duration (`1.5s`); an error with "
        "AMQP. Every read is also bounded by `--backend-timeout`",
    )
    username: str | None = param(
        "username",
        default=None,
        connection=True,
        shown_default="from `host`",
        doc="with `password` (both or neither), overrides the credentials of `host`. Without "
        "any: `guest`/`guest` for AMQP, no authentication for HTTP",
    )
    password: str | None = param(
        "password",
        default=None,
        secret=True,
        connection=True,
        shown_default="from `host`",
        doc="with `username` (both or neither), overrides the credentials of `host`",
    )
    tls: str = param(
        "tls",
        default="disable",
        choices=("enable", "disable"),
        connection=True,
        doc="`enable` to use `ca`, `cert`, `key`, `keyPassword` (needs an `amqps://` or "
        "`https://` host)",
    )
    ca: str | None = param(
        "ca",
        pem,
        default=None,
        connection=True,
        shown_default="system roots",
        doc="PEM of extra CA certificates to trust (with `tls: enable`)",
    )
    cert: str | None = param(
        "cert",
        pem,
        default=None,
        connection=True,
        doc="PEM client certificate, with `key` (with `tls: enable`); AMQP without a password "
        "(in `host` or `password`) then authenticates with SASL EXTERNAL",
    )
    key: str | None = param(
        "key",
        pem,
        default=None,
        secret=True,
        connection=True,
        doc="PEM private key of `cert`, both or neither (with `tls: enable`)",
    )
    key_password: str | None = param(
        "keyPassword",
        default=None,
        secret=True,
        connection=True,
        doc="password of an encrypted `key`",
    )
    unsafe_ssl: bool = param(
        "unsafeSsl",
        boolean,
        default=False,
        connection=True,
        doc="skip certificate verification on `amqps://`/`https://`. **Caution**: KEDA reads "
        "this key too, for its own connection to the scaler",
    )
    workload_identity_resource: str | None = _refused(
        "workloadIdentityResource", "Azure workload identity"
    )
    oauth_token_uri: str | None = _refused("oauthTokenURI", "OAuth 2 token endpoint")
    client_id: str | None = _refused("clientID", "OAuth 2 client")
    client_secret: str | None = _refused("clientSecret", "OAuth 2 client secret", secret=True)
    scopes: str | None = _refused("scopes", "OAuth 2 scopes")
    endpoint_params: str | None = _refused("endpointParams", "OAuth 2 token parameters")


def refused_keys(params: RabbitParams) -> list[str]:
    """The keys of KEDA's token-based authentication that ``params`` was given."""
    return [
        p.key
        for name, p in declared(RabbitParams)
        if p.shown_default == NOT_SUPPORTED and getattr(params, name) is not None
    ]
