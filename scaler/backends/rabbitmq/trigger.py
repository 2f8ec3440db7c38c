"""``backend: rabbitmq`` triggers: the connection identity, the queue read, the rules applied.

:func:`build` applies KEDA's cross-field rules (``validateTrigger``: ``mode``/``value``/
``queueLength``, ``protocol`` versus the scheme of ``host``, what only the management API can
do, the TLS keys, the authentication it does not support) to the declared parameters
(``params``), and picks the ``operation`` of ages. :meth:`RabbitTrigger.evaluate` applies the
mode (``modes``) and ``activeWhileInFlight`` to the queues a read returned, so one broker read
serves every trigger on the same queue whatever its options.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote_plus

from scaler.backends.base import Evaluation, Measurement, Trigger, metric_name
from scaler.backends.rabbitmq.modes import combine, in_flight, keda_rule, oldest_age
from scaler.backends.rabbitmq.params import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_VALUE,
    NAME,
    OLDEST_MESSAGE_AGE,
    QUEUE_LENGTH,
    RATE_MODES,
    RabbitParams,
    refused_keys,
)
from scaler.backends.rabbitmq.uri import TLS_SCHEMES, amqp_vhost, http_vhost_and_prefix
from scaler.backends.tls import context_for
from scaler.metadata import Reading
from scaler.values import quote

#: how the broker lists the scaler's AMQP connections, and its HTTP user agent
CLIENT_NAME: Final = "keda-queue-scaler"
_TLS_KEYS: Final = ("ca", "cert", "key", "keyPassword")


@dataclass(frozen=True, slots=True)
class RabbitConnection:
    """Identity of one broker endpoint; the pool keeps one client per distinct value.

    The credentials of ``host`` are split out of it (``host`` here is only the host name), so no
    field but the hidden ones ever holds a secret.
    """

    protocol: str  # "amqp" or "http"
    scheme: str  # amqp, amqps, http, https
    host: str
    port: int
    #: HTTP only: path before the vhost segment (a management API behind a path prefix)
    path_prefix: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    unsafe_ssl: bool = False
    #: PEM contents, used with ``tls: enable`` only (as in KEDA)
    ca: str | None = field(default=None, repr=False)
    cert: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    key_password: str | None = field(default=None, repr=False)
    #: HTTP only: request timeout in seconds (``timeout``); None = the backend's timeout
    timeout: float | None = None

    @property
    def tls(self) -> bool:
        return self.scheme in TLS_SCHEMES

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def where(self) -> str:
        """A secret-free name of the endpoint for messages."""
        return f"rabbitmq {self.scheme}://{self.address}{self.path_prefix}"

    def ssl_context(self) -> ssl.SSLContext:
        """The client TLS context of this endpoint (system roots, ``ca``, ``cert`` + ``key``);
        a MetadataError naming no secret when the PEM material cannot be loaded."""
        return context_for(NAME, self)


@dataclass(frozen=True, slots=True)
class RabbitQueue:
    """The resource read from the broker: a queue (or a regex over queue names) in a vhost."""

    vhost: str
    name: str
    use_regex: bool = False
    #: regex only (normalised to the default otherwise, so it never splits coalescing)
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True, kw_only=True)
class RabbitTrigger(Trigger[RabbitConnection, RabbitQueue]):
    """A parsed ``backend: rabbitmq`` trigger.

    :param mode: the mode after KEDA's defaults (``QueueLength`` for ``queueLength`` or nothing)
    :param value: the target after KEDA's defaults (``queueLength``, or 20 when nothing is set)
    :param operation: ``operation``, or ``max`` for ages when it is not given
    """

    # out of repr, as the connection keeps PEM material out of it (`ca` and `cert` are no
    # secrets, but whole certificates would bury what identifies the trigger)
    params: RabbitParams = field(repr=False)
    mode: str
    value: float
    operation: str

    @property
    def target(self) -> float:
        return self.value

    @property
    def measures_age(self) -> bool:
        return self.mode == OLDEST_MESSAGE_AGE

    def metric_name(self) -> str:
        # KEDA: NormalizeString("rabbitmq-" + url.QueryEscape(queueName)); quote_plus escapes the
        # same characters, so non-ASCII and regex names map to the same metric name as KEDA's.
        return metric_name("rabbitmq", quote_plus(self.resource.name, safe=""))

    def resource_label(self) -> str:
        kind = "regex " if self.resource.use_regex else ""
        return f"{self.connection.address}/{self.resource.vhost}/{kind}{self.resource.name}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        """The mode's metric and activity over the combined queues (KEDA's for its five modes,
        keda-protocol.md 2.3), also active with work in flight when ``activeWhileInFlight``."""
        a = self.params.activation_value
        if self.mode == OLDEST_MESSAGE_AGE:
            where = f"{self.connection.where} vhost {self.resource.vhost!r}"
            age = oldest_age(measurement, self.operation, where)
            evaluation = Evaluation(age, age > a)
        else:
            m, p, d = combine(measurement.items, self.operation, self._count_key())
            evaluation = keda_rule(self.mode, a, m, p, d)
        if (
            self.params.active_while_in_flight
            and not evaluation.active
            and in_flight(measurement.items) > 0
        ):
            return Evaluation(evaluation.value, True)
        return evaluation

    def _count_key(self) -> str:
        # `messages` is ready + unacknowledged; AMQP sees ready messages only
        if self.params.exclude_unacknowledged or self.connection.protocol == "amqp":
            return "messages_ready"
        return "messages"


def _protocol(params: RabbitParams, reading: Reading) -> str | None:
    """``amqp`` or ``http``: ``protocol``, which must agree with the scheme of ``host``."""
    if params.host is None:
        return None  # refused already
    scheme = params.host.scheme
    if params.protocol not in ("auto", params.host.protocol):
        wanted = "amqp:// or amqps://" if params.protocol == "amqp" else "http:// or https://"
        reading.problem(
            f"protocol: {quote(params.protocol)} does not match the {scheme}:// host; "
            f"use an {wanted} host, or protocol: auto"
        )
        return None
    return params.host.protocol


def _mode_and_value(params: RabbitParams, reading: Reading) -> tuple[str | None, float | None]:
    """``mode`` and ``value`` after the deprecated ``queueLength`` and KEDA's defaults."""
    mode_given, value_given = reading.given("mode"), reading.given("value")
    if reading.given("queueLength"):
        if mode_given or value_given:
            reading.problem(
                "queueLength is deprecated and cannot be combined with mode or value; "
                "use mode: QueueLength and value instead"
            )
        return QUEUE_LENGTH, params.queue_length
    if not mode_given and not value_given:
        return QUEUE_LENGTH, DEFAULT_VALUE
    if not mode_given:
        reading.problem("missing required parameter mode (value is set)")
    elif not value_given:
        reading.problem("missing required parameter value (mode is set)")
    return params.mode, params.value


def _amqp_limits(params: RabbitParams, reading: Reading, mode: str | None) -> None:
    """What only the management API can do, refused over AMQP."""
    if mode in RATE_MODES:
        reading.problem(
            f"mode: {quote(mode or '')} needs message rates, which only the management "
            "API has: use an http:// or https:// host (protocol: http)"
        )
    if mode == OLDEST_MESSAGE_AGE:
        reading.problem(
            f"mode: {quote(mode)} needs the timestamp of the message at the head of the queue, "
            "which only the management API reports (head_message_timestamp): use an http:// "
            "or https:// host (protocol: http)"
        )
    if params.active_while_in_flight:
        reading.problem(
            "activeWhileInFlight: true needs the count of unacknowledged messages, which only "
            "the management API reports (AMQP sees ready messages only): use an http:// or "
            "https:// host (protocol: http)"
        )
    if params.use_regex:
        reading.problem("useRegex: true needs the management API (an http(s):// host)")
    if params.exclude_unacknowledged:
        reading.problem(
            "excludeUnacknowledged: true needs the management API (an http(s):// host); "
            "AMQP counts ready messages only"
        )
    if reading.given("timeout"):
        reading.problem(
            "timeout applies to the management API only; AMQP reads are bounded by "
            "the scaler's backend timeout"
        )


def build(params: RabbitParams, reading: Reading) -> RabbitTrigger | None:
    """The trigger, after KEDA's cross-field rules; None when a problem prevents it."""
    if reading.given("username") != reading.given("password"):
        reading.problem("username and password must be given together")
    if reading.given("cert") != reading.given("key"):
        reading.problem("cert and key must be given together")
    protocol = _protocol(params, reading)
    scheme = params.host.scheme if params.host is not None else None
    if params.tls == "enable" and scheme is not None and scheme not in TLS_SCHEMES:
        reading.problem(f"tls: 'enable' needs an amqps:// or https:// host, not {scheme}://")
    if params.tls != "enable":
        for key in _TLS_KEYS:
            if reading.given(key):
                reading.problem(f"{key} is used only with tls: enable")
    for key in refused_keys(params):
        reading.problem(f"{key} is not supported (Azure workload identity and OAuth 2 are not)")
    mode, value = _mode_and_value(params, reading)
    if protocol == "amqp":
        _amqp_limits(params, reading, mode)
    if reading.failed:
        return None
    # no problem recorded: each was set
    assert protocol is not None
    assert mode is not None
    assert value is not None
    # KEDA's default `sum` stays for its modes; for ages, which KEDA has no mode for, a sum of
    # the matched queues' ages means nothing, the oldest of them does
    operation = params.operation
    if mode == OLDEST_MESSAGE_AGE and not reading.given("operation"):
        operation = "max"
    return _trigger(params, protocol, mode, value, operation)


def _trigger(
    params: RabbitParams, protocol: str, mode: str, value: float, operation: str
) -> RabbitTrigger:
    uri = params.host
    assert uri is not None  # no problem recorded
    username, password = params.username, params.password
    if username is None:  # metadata credentials override the URI's, both or neither
        username, password = uri.username, uri.password
    if protocol == "amqp":
        vhost = params.vhost_name if params.vhost_name is not None else amqp_vhost(uri.path)
        prefix = ""
    else:
        vhost, prefix = http_vhost_and_prefix(uri.path, params.vhost_name)
    return RabbitTrigger(
        connection=RabbitConnection(
            protocol=protocol,
            scheme=uri.scheme,
            host=uri.host,
            port=uri.port,
            path_prefix=prefix,
            username=username,
            password=password,
            unsafe_ssl=params.unsafe_ssl,
            ca=params.ca,
            cert=params.cert,
            key=params.key,
            key_password=params.key_password,
            timeout=params.timeout if protocol == "http" else None,
        ),
        resource=RabbitQueue(
            vhost=vhost,
            name=params.queue_name,
            use_regex=params.use_regex,
            page_size=params.page_size if params.use_regex else DEFAULT_PAGE_SIZE,
        ),
        params=params,
        mode=mode,
        value=value,
        operation=operation,
    )
