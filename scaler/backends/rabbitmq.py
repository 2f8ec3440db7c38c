"""The ``rabbitmq`` backend: queue depth and message rates of RabbitMQ queues, with KEDA parity.

Parameters, defaults, validation and the per-mode metric/activity rules are those of KEDA's
``rabbitmq`` trigger: ``host`` (``amqp[s]://`` or ``http[s]://``), ``protocol`` (auto),
``queueName``, ``mode`` + ``value`` (default ``QueueLength`` 20) or the deprecated ``queueLength``,
``activationValue``, ``vhostName``, ``useRegex``, ``operation``, ``pageSize``,
``excludeUnacknowledged``, ``timeout``, ``username``/``password``, ``unsafeSsl``, ``tls``, ``ca``,
``cert``, ``key``, ``keyPassword``.

Two ways to read a queue, chosen by ``protocol`` (or the scheme of ``host``):

* **AMQP** (aio-pika): a passive ``queue.declare`` on a channel opened for that one query and
  closed after it. Its ``message-count`` is the number of messages *ready* for delivery; messages
  delivered to a consumer but not yet acknowledged are invisible to AMQP, and so are rates. A
  missing queue makes the broker close the channel (404), never the connection. One connection
  per (connection identity, vhost) serves every trigger; it is opened lazily under a lock and
  reopened after a failure. Any failure other than a clean channel-level refusal closes that
  connection, so no channel or connection can leak (keda#6266).
* **HTTP** (httpx, the management API): ``GET /api/queues/<vhost>/<queue>``, or with ``useRegex``
  one page of ``GET /api/queues/<vhost>?use_regex=true&name=<regex>`` (more than one page is an
  error, as in KEDA). It sees ready *and* unacknowledged messages and the publish and
  deliver/get rates.

The client returns raw per-queue facts (:class:`~scaler.backends.base.Measurement` ``items``);
:meth:`RabbitTrigger.evaluate` applies ``excludeUnacknowledged``, ``operation`` and the mode, so one
broker read serves every trigger on the same queue whatever its options.

This is the only module that imports aio-pika, aiormq and httpx.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import ssl
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, quote_plus, unquote, urlsplit

import aio_pika
import aio_pika.abc
import aiormq.exceptions as amqp_errors
import httpx

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
    UnsupportedResource,
)
from scaler.metadata import (
    InvalidValue,
    MetadataReader,
    boolean,
    integer,
    number,
    positive,
    resource_name,
    text,
)
from scaler.metadata import (
    quote as quote_value,
)

log = logging.getLogger(__name__)

NAME: Final = "rabbitmq"
#: where and how to connect: what a connection profile supplies
CONNECTION_KEYS: Final = frozenset(
    {"host", "username", "password", "tls", "unsafeSsl", "ca", "cert", "key", "keyPassword"}
)

#: queues per management call in a watcher batch (the API's largest page is 500)
_BATCH_PAGE: Final = 200

QUEUE_LENGTH: Final = "QueueLength"
MESSAGE_RATE: Final = "MessageRate"
DELIVER_GET_RATE: Final = "DeliverGetRate"
PUBLISHED_TO_DELIVERED_RATIO: Final = "PublishedToDeliveredRatio"
EXPECTED_QUEUE_CONSUMPTION_TIME: Final = "ExpectedQueueConsumptionTime"
MODES: Final = (
    QUEUE_LENGTH,
    MESSAGE_RATE,
    DELIVER_GET_RATE,
    PUBLISHED_TO_DELIVERED_RATIO,
    EXPECTED_QUEUE_CONSUMPTION_TIME,
)
#: modes that need rates, which only the management API has
RATE_MODES: Final = frozenset(MODES[1:])
OPERATIONS: Final = ("sum", "max", "avg")
PROTOCOLS: Final = ("auto", "amqp", "http")
DEFAULT_VALUE: Final = 20.0
DEFAULT_PAGE_SIZE: Final = 100

_SCHEMES: Final = {"amqp": "amqp", "amqps": "amqp", "http": "http", "https": "http"}
_TLS_SCHEMES: Final = frozenset({"amqps", "https"})
_DEFAULT_PORTS: Final = {"amqp": 5672, "amqps": 5671, "http": 80, "https": 443}
_CONNECTION_NAME: Final = "keda-queue-scaler"
# Go's time.ParseDuration units, for `timeout: 2s` (a bare integer is milliseconds, as in KEDA)
_DURATION_PART: Final = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_MAX_BODY: Final = 200
# KEDA's token-based authentication for the management API, not implemented here
_UNSUPPORTED_AUTH: Final = (
    "workloadIdentityResource",
    "oauthTokenURI",
    "clientID",
    "clientSecret",
    "scopes",
    "endpointParams",
)


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
        return self.scheme in _TLS_SCHEMES

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def where(self) -> str:
        """A secret-free name of the endpoint for messages."""
        return f"rabbitmq {self.scheme}://{self.address}{self.path_prefix}"


@dataclass(frozen=True, slots=True)
class RabbitQueue:
    """The resource read from the broker: a queue (or a regex over queue names) in a vhost."""

    protocol: str
    vhost: str
    name: str
    use_regex: bool = False
    #: regex only (normalised to the default otherwise, so it never splits coalescing)
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class RabbitTrigger:
    """A parsed ``backend: rabbitmq`` trigger."""

    connection: RabbitConnection
    resource: RabbitQueue
    mode: str = QUEUE_LENGTH
    value: float = DEFAULT_VALUE
    activation_value: float = 0.0
    operation: str = "sum"
    exclude_unacknowledged: bool = False
    backend: str = NAME

    @property
    def target(self) -> float:
        return self.value

    def metric_name(self) -> str:
        # KEDA: NormalizeString("rabbitmq-" + url.QueryEscape(queueName)); quote_plus escapes the
        # same characters, so non-ASCII and regex names map to the same metric name as KEDA's.
        return metric_name("rabbitmq", quote_plus(self.resource.name, safe=""))

    def resource_label(self) -> str:
        kind = "regex " if self.resource.use_regex else ""
        return f"{self.connection.address}/{self.resource.vhost}/{kind}{self.resource.name}"

    def evaluate(self, measurement: Measurement) -> Evaluation:
        """KEDA's GetMetricsAndActivity over the combined queue (keda-protocol.md 2.3)."""
        m, p, d = self.combine(measurement.items)
        a = self.activation_value
        if self.mode == QUEUE_LENGTH:
            return Evaluation(m, m > a)
        if self.mode == MESSAGE_RATE:
            return Evaluation(p, p > a or m > a)
        if self.mode == DELIVER_GET_RATE:
            return Evaluation(d, d > a)
        if self.mode == PUBLISHED_TO_DELIVERED_RATIO:
            ratio = 0.0
            if p > 0 and d == 0:
                ratio = a
            elif p > 0 and d > 0:
                ratio = p / d
            return Evaluation(ratio, ratio > a or (p > 0 and d == 0))
        assert self.mode == EXPECTED_QUEUE_CONSUMPTION_TIME
        if m == 0:
            eta = 0.0  # an empty queue drains in no time, whatever the rates (keda#8033)
        elif d == 0:
            eta = a
        else:
            eta = (p - d) / d + m / d
        return Evaluation(eta, eta > a or (d == 0 and m > 0))

    def combine(self, items: Sequence[Mapping[str, float | str]]) -> tuple[float, float, float]:
        """(messages, publish rate, deliver/get rate) over the matched queues, by ``operation``.

        Counts are ``messages`` (ready + unacknowledged) unless ``excludeUnacknowledged`` or
        AMQP (which sees ready messages only). ``avg`` divides counts as integers, as KEDA does;
        no matched queue gives zeros, as in KEDA.
        """
        if not items:
            return 0.0, 0.0, 0.0
        count_key = (
            "messages_ready"
            if self.exclude_unacknowledged or self.connection.protocol == "amqp"
            else "messages"
        )
        counts = [int(_fact(item, count_key)) for item in items]
        publish = [_fact(item, "publish_rate") for item in items]
        deliver = [_fact(item, "deliver_get_rate") for item in items]
        if self.operation == "max":
            # KEDA's maximum starts from 0
            return float(max(0, *counts)), max(0.0, *publish), max(0.0, *deliver)
        n = len(items)
        if self.operation == "avg":
            return float(sum(counts) // n), sum(publish) / n, sum(deliver) / n
        return float(sum(counts)), sum(publish), sum(deliver)


def _fact(item: Mapping[str, float | str], key: str) -> float:
    value = item.get(key, 0.0)
    return float(value) if not isinstance(value, str) else 0.0


# --- parsing ----------------------------------------------------------------------------------


def duration_seconds(text: str) -> float:
    """``timeout``: integer milliseconds (KEDA's form) or a Go duration such as ``2s``; > 0."""
    if re.fullmatch(r"[+-]?[0-9]+", text):
        seconds = int(text) / 1000
    else:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise InvalidValue("is not a duration (milliseconds, or e.g. 500ms, 2s)")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not seconds > 0 or not math.isfinite(seconds):
        raise InvalidValue("must be greater than 0")
    return seconds


def _page_size(value: int) -> str | None:
    return None if value >= 1 else "must be 1 or greater"


def _pem(value: str) -> str | None:
    return None if "-----BEGIN " in value else "is not PEM (-----BEGIN ...-----)"


def parse_metadata(raw: Mapping[str, str]) -> RabbitTrigger:
    """Parse ``backend: rabbitmq`` metadata with KEDA's names, defaults and rules; all problems."""
    r = MetadataReader(raw, NAME)
    host = r.get("host", text)
    protocol = r.get("protocol", text, default="auto", choices=PROTOCOLS)
    queue_name = r.get("queueName", resource_name)
    mode = r.get("mode", text, default=None, choices=MODES)
    value = r.get("value", number, default=None, check=positive)
    queue_length = r.get("queueLength", number, default=None, check=positive)
    activation = r.get("activationValue", number, default=0.0)
    vhost_name = r.get("vhostName", text, default=None)
    use_regex = r.get("useRegex", boolean, default=False)
    operation = r.get("operation", text, default="sum", choices=OPERATIONS)
    page_size = r.get("pageSize", integer, default=DEFAULT_PAGE_SIZE, check=_page_size)
    exclude_unacked = r.get("excludeUnacknowledged", boolean, default=False)
    timeout = r.get("timeout", duration_seconds, default=None)
    username = r.get("username", text, default=None)
    password = r.get("password", text, default=None, secret=True)
    unsafe_ssl = r.get("unsafeSsl", boolean, default=False)
    tls_mode = r.get("tls", text, default="disable", choices=("enable", "disable"))
    ca = r.get("ca", text, default=None, check=_pem)
    cert = r.get("cert", text, default=None, check=_pem)
    key = r.get("key", text, default=None, secret=True, check=_pem)
    key_password = r.get("keyPassword", text, default=None, secret=True)

    # --- cross-field rules (KEDA's Validate) ---
    if r.present("username") != r.present("password"):
        r.problem("username and password must be given together")
    if r.present("cert") != r.present("key"):
        r.problem("cert and key must be given together")
    endpoint = _split_host(r, host) if host is not None else None
    scheme = endpoint[0] if endpoint is not None else None
    resolved: str | None = None
    if protocol is not None and scheme is not None:
        resolved = _SCHEMES[scheme] if protocol == "auto" else protocol
        if resolved != _SCHEMES[scheme]:
            r.problem(
                f"protocol: {quote_value(protocol)} does not match the {scheme}:// host; "
                f"use an {'amqp:// or amqps://' if protocol == 'amqp' else 'http:// or https://'}"
                " host, or protocol: auto"
            )
            resolved = None
    if tls_mode == "enable" and scheme is not None and scheme not in _TLS_SCHEMES:
        r.problem(f"tls: 'enable' needs an amqps:// or https:// host, not {scheme}://")
    if tls_mode != "enable":
        for name in ("ca", "cert", "key", "keyPassword"):
            if r.present(name):
                r.problem(f"{name} is used only with tls: enable")

    for name in _UNSUPPORTED_AUTH:
        if r.present(name):
            # silently falling back to basic auth would only end in a confusing 401
            r.problem(f"{name} is not supported (Azure workload identity and OAuth 2 are not)")

    # mode/value/queueLength, exactly as KEDA's validateTrigger
    mode_given, value_given = r.present("mode"), r.present("value")
    if r.present("queueLength"):
        if mode_given or value_given:
            r.problem(
                "queueLength is deprecated and cannot be combined with mode or value; "
                "use mode: QueueLength and value instead"
            )
        mode, value = QUEUE_LENGTH, queue_length
    elif not mode_given and not value_given:
        mode, value = QUEUE_LENGTH, DEFAULT_VALUE
    elif not mode_given:
        r.problem("missing required parameter mode (value is set)")
    elif not value_given:
        r.problem("missing required parameter value (mode is set)")

    if resolved == "amqp":
        if mode in RATE_MODES:
            r.problem(
                f"mode: {quote_value(mode or '')} needs message rates, which only the management "
                "API has: use an http:// or https:// host (protocol: http)"
            )
        if use_regex:
            r.problem("useRegex: true needs the management API (an http(s):// host)")
        if exclude_unacked:
            r.problem(
                "excludeUnacknowledged: true needs the management API (an http(s):// host); "
                "AMQP counts ready messages only"
            )
        if r.present("timeout"):
            r.problem(
                "timeout applies to the management API only; AMQP reads are bounded by "
                "the scaler's backend timeout"
            )
    r.finish()
    # finish() raised otherwise
    assert endpoint is not None
    assert resolved is not None
    assert queue_name is not None
    assert mode is not None
    assert value is not None
    scheme, hostname, port, path, uri_user, uri_password = endpoint
    if username is None:  # metadata credentials override the URI's, both or neither
        username, password = uri_user, uri_password
    if resolved == "amqp":
        vhost = vhost_name if vhost_name is not None else _amqp_vhost(path)
        prefix = ""
    else:
        vhost, prefix = _http_vhost_and_prefix(path, vhost_name)
    return RabbitTrigger(
        connection=RabbitConnection(
            protocol=resolved,
            scheme=scheme,
            host=hostname,
            port=port,
            path_prefix=prefix,
            username=username,
            password=password,
            unsafe_ssl=unsafe_ssl,
            ca=ca,
            cert=cert,
            key=key,
            key_password=key_password,
            timeout=timeout if resolved == "http" else None,
        ),
        resource=RabbitQueue(
            protocol=resolved,
            vhost=vhost,
            name=queue_name,
            use_regex=use_regex,
            page_size=page_size if use_regex else DEFAULT_PAGE_SIZE,
        ),
        mode=mode,
        value=value,
        activation_value=activation,
        operation=operation,
        exclude_unacknowledged=exclude_unacked,
    )


_Endpoint = tuple[str, str, int, str, str | None, str | None]


def _split_host(r: MetadataReader, host: str) -> _Endpoint | None:
    """(scheme, host, port, raw path, user, password) of ``host``, or None after a problem."""
    shown = quote_value(host)
    try:
        parts = urlsplit(host)
        port = parts.port
    except ValueError:
        r.problem(f"host: {shown} is not a valid URI")
        return None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        r.problem(
            f"host: {shown} must start with amqp://, amqps://, http:// or https:// "
            f"(scheme {scheme!r})"
        )
        return None
    if not parts.hostname:
        r.problem(f"host: {shown} has no host name")
        return None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return (
        scheme,
        parts.hostname,
        port or _DEFAULT_PORTS[scheme],
        parts.path,  # still percent-encoded: `%2F` must stay distinguishable from `/`
        user,
        password,
    )


def _amqp_vhost(raw_path: str) -> str:
    # AMQP URI spec: the path (without its leading slash) is the percent-encoded vhost. An empty
    # path, or a bare `/`, means the default vhost `/`.
    encoded = raw_path[1:] if raw_path.startswith("/") else raw_path
    return unquote(encoded) if encoded else "/"


def _http_vhost_and_prefix(raw_path: str, vhost_name: str | None) -> tuple[str, str]:
    # KEDA's getVhostAndPathFromURL: the last path segment is the vhost (empty = `/`), earlier
    # segments a prefix kept in front of /api; vhostName overrides the segment.
    segments = raw_path.split("/")
    prefix = "/".join(s for s in segments[:-1] if s)
    vhost = vhost_name if vhost_name is not None else unquote(segments[-1])
    return (vhost or "/"), (f"/{prefix}" if prefix else "")


# --- TLS --------------------------------------------------------------------------------------


def _ssl_context(connection: RabbitConnection) -> ssl.SSLContext:
    return context_for(NAME, connection)


# --- AMQP -------------------------------------------------------------------------------------


class AmqpClient:
    """Passive declares over one aio-pika connection per vhost, a fresh channel per query."""

    def __init__(self, connection: RabbitConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._links: dict[str, aio_pika.abc.AbstractConnection] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def measure(self, resource: Hashable) -> Measurement:
        assert isinstance(resource, RabbitQueue)
        assert not resource.use_regex  # rejected at parse time
        link = await self._link(resource.vhost)
        where = f"{self._connection.where} vhost {resource.vhost!r} queue {resource.name!r}"
        try:
            # aiormq's channel, not aio-pika's: aio-pika registers a callback per channel on the
            # connection and never removes it when the broker closes the channel (a missing
            # queue), so every failed look-up would leak on the shared connection
            transport = link.transport
            if transport is None:
                raise BackendUnavailable(f"{where}: connection closed")
            channel = await transport.connection.channel(publisher_confirms=False)
            declared = await channel.queue_declare(resource.name, passive=True)
            await channel.close()
        except amqp_errors.ChannelClosed as err:
            # a channel-level refusal: the broker closed that channel, the connection is fine
            raise _channel_error(err, where) from None
        except BaseException as err:
            # Lost connection, timeout, cancellation: the channel may still be open on the
            # broker. Dropping the whole connection frees it there (and the next query reopens).
            self._drop(resource.vhost, link)
            if isinstance(err, Exception):
                raise _connection_error(err, where) from None
            raise
        ready = int(declared.message_count or 0)
        item: dict[str, float | str] = {"queue": resource.name, "messages_ready": float(ready)}
        return Measurement(float(ready), {"protocol": "amqp", "messages_ready": ready}, (item,))

    async def _link(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        link = self._links.get(vhost)
        if link is not None and not link.is_closed:
            return link
        lock = self._locks.setdefault(vhost, asyncio.Lock())
        async with lock:
            link = self._links.get(vhost)
            if link is not None and not link.is_closed:
                return link
            if link is not None:
                self._drop(vhost, link)
            if self._closed:
                raise BackendUnavailable(f"{self._connection.where}: client closed")
            return await self._keep(vhost, await self._open(vhost))

    async def _keep(
        self, vhost: str, link: aio_pika.abc.AbstractConnection
    ) -> aio_pika.abc.AbstractConnection:
        if self._closed:
            # aclose() ran while this connection was being opened: it must not outlive it
            await _close_link(link)
            raise BackendUnavailable(f"{self._connection.where}: client closed")
        self._links[vhost] = link
        return link

    async def _open(self, vhost: str) -> aio_pika.abc.AbstractConnection:
        c = self._connection
        extra: dict[str, Any] = {}
        if c.tls:
            if self._ssl is None:
                self._ssl = _ssl_context(c)
            extra.update(ssl=True, ssl_context=self._ssl)
            if c.cert and c.username is None:
                # TLS client certificate and no password anywhere: SASL EXTERNAL, as KEDA
                extra["auth"] = "external"
        where = f"{c.where} vhost {vhost!r}"
        try:
            link: aio_pika.abc.AbstractConnection = await aio_pika.connect(
                host=c.host,
                port=c.port,
                # the AMQP URI defaults, as KEDA's client applies them
                login=c.username if c.username is not None else "guest",
                password=c.password if c.password is not None else "guest",
                virtualhost=vhost,
                timeout=self._timeout,
                client_properties={"connection_name": _CONNECTION_NAME},
                **extra,
            )
        except Exception as err:  # noqa: BLE001 - every failure becomes a BackendError
            raise _connection_error(err, where) from None
        return link

    def _drop(self, vhost: str, link: aio_pika.abc.AbstractConnection) -> None:
        if self._links.get(vhost) is link:
            del self._links[vhost]
        # closed in the background: this may run while the caller is being cancelled
        task = asyncio.get_running_loop().create_task(_close_link(link))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        self._closed = True
        links = list(self._links.values())
        self._links.clear()
        await asyncio.gather(*(_close_link(link) for link in links))
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


async def _close_link(link: aio_pika.abc.AbstractConnection) -> None:
    try:
        await link.close()
    except Exception:  # a broken connection may fail to close; it is dropped anyway
        log.debug("closing an AMQP connection failed", exc_info=True)


def _reply_text(err: BaseException) -> str:
    # aiormq puts the broker's reply text (or code and text) in args; never credentials
    texts = [str(a) for a in err.args if isinstance(a, str | int)]
    return " ".join(texts) or type(err).__name__


def _channel_error(err: amqp_errors.ChannelClosed, where: str) -> BackendError:
    detail = _reply_text(err)
    if isinstance(err, amqp_errors.ChannelNotFoundEntity):
        return TargetNotFound(f"{where}: queue not found ({detail})")
    if isinstance(err, amqp_errors.ChannelAccessRefused):
        return BackendPermissionDenied(f"{where}: {detail}")
    if isinstance(err, amqp_errors.ChannelLockedResource):
        return UnsupportedResource(
            f"{where}: {detail} (an exclusive queue of another connection cannot be declared "
            "passively; use the management API)"
        )
    return BackendError(f"{where}: {detail}")


def _connection_error(err: Exception, where: str) -> BackendError:
    detail = _reply_text(err)
    if isinstance(err, TimeoutError):
        return BackendTimeout(f"{where}: no answer in time")
    if isinstance(err, amqp_errors.ProbableAuthenticationError | amqp_errors.AuthenticationError):
        return BackendAuthError(f"{where}: {detail}")
    if isinstance(err, amqp_errors.ConnectionNotAllowed) or (
        # aiormq reports a Connection.Close in answer to Connection.Open (the broker refusing
        # the vhost: 530 NOT_ALLOWED, missing or no access) as an unexpected frame
        isinstance(err, amqp_errors.InvalidFrameError) and "Connection.Close" in detail
    ):
        return BackendPermissionDenied(
            f"{where}: the broker refused the vhost (it does not exist, or the user has no "
            "permissions on it)"
        )
    if isinstance(err, amqp_errors.ConnectionClosed) and err.args and err.args[0] == 530:
        return BackendPermissionDenied(f"{where}: {detail}")
    if isinstance(
        err,
        amqp_errors.AMQPConnectionError
        | amqp_errors.ChannelInvalidStateError
        | ConnectionError
        | OSError
        | RuntimeError,
    ):
        return BackendUnavailable(f"{where}: {detail}")
    return BackendError(f"{where}: {detail}")


# --- HTTP (management API) --------------------------------------------------------------------


class HttpClient:
    """Queue details from the management API over one httpx client (keep-alive pool)."""

    def __init__(self, connection: RabbitConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = connection.timeout if connection.timeout is not None else timeout
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            c = self._connection
            auth = None
            if c.username is not None:
                auth = httpx.BasicAuth(c.username, c.password or "")
            self._http = httpx.AsyncClient(
                base_url=f"{c.scheme}://{c.address}{c.path_prefix}",
                auth=auth,
                timeout=self._timeout,
                verify=_ssl_context(c) if c.tls else True,
                follow_redirects=False,
                headers={"user-agent": _CONNECTION_NAME},
            )
        return self._http

    async def measure(self, resource: Hashable) -> Measurement:
        assert isinstance(resource, RabbitQueue)
        vhost = quote(resource.vhost, safe="")
        if resource.use_regex:
            where = (
                f"{self._connection.where} vhost {resource.vhost!r} queues matching "
                f"{resource.name!r}"
            )
            # KEDA's query, parameter for parameter (`pagination` is ignored by RabbitMQ)
            body = await self._get(
                f"/api/queues/{vhost}",
                {
                    "page": "1",
                    "use_regex": "true",
                    "pagination": "false",
                    "name": resource.name,
                    "page_size": str(resource.page_size),
                },
                where,
            )
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise BackendError(f"{where}: unexpected answer (no items list)")
            pages = body.get("page_count", 1)
            if isinstance(pages, int) and pages > 1:
                raise UnsupportedResource(
                    f"{where}: the regex matches {body.get('filtered_count', '?')} queues, more "
                    f"than one page of pageSize {resource.page_size}; raise pageSize or narrow "
                    "the regex"
                )
            items = tuple(_queue_facts(q, where) for q in body["items"])
        else:
            where = f"{self._connection.where} vhost {resource.vhost!r} queue {resource.name!r}"
            body = await self._get(
                f"/api/queues/{vhost}/{quote(resource.name, safe='')}", None, where
            )
            items = (_queue_facts(body, where),)
        return _totals(items)

    async def measure_many(
        self, resources: Sequence[Hashable]
    ) -> tuple[dict[Hashable, Measurement | BaseException], int]:
        """Watched queues of one vhost in one management call (an exact-name regex), so a
        watcher batch costs one request per vhost; regex triggers are read one by one."""
        results: dict[Hashable, Measurement | BaseException] = {}
        requests = 0
        by_vhost: dict[str, list[RabbitQueue]] = {}
        for resource in resources:
            assert isinstance(resource, RabbitQueue)
            if resource.use_regex:
                requests += 1
                try:
                    results[resource] = await self.measure(resource)
                except (BackendError, MetadataError) as err:
                    results[resource] = err
            else:
                by_vhost.setdefault(resource.vhost, []).append(resource)
        for vhost, queues in by_vhost.items():
            for start in range(0, len(queues), _BATCH_PAGE):
                chunk = queues[start : start + _BATCH_PAGE]
                requests += 1
                try:
                    found = await self._queues_named(vhost, [q.name for q in chunk])
                except TargetNotFound as err:  # the vhost itself is missing
                    results.update(dict.fromkeys(chunk, err))
                    continue
                for queue in chunk:
                    where = f"{self._connection.where} vhost {vhost!r} queue {queue.name!r}"
                    body = found.get(queue.name)
                    if body is None:
                        results[queue] = TargetNotFound(f"{where}: not found")
                        continue
                    try:
                        item = _queue_facts(body, where)
                    except BackendError as err:
                        results[queue] = err
                        continue
                    results[queue] = _totals((item,))
        return results, requests

    async def _queues_named(self, vhost: str, names: list[str]) -> dict[str, Any]:
        where = f"{self._connection.where} vhost {vhost!r}"
        body = await self._get(
            f"/api/queues/{quote(vhost, safe='')}",
            {
                "page": "1",
                "page_size": str(_BATCH_PAGE),
                "use_regex": "true",
                "name": "^(" + "|".join(re.escape(n) for n in names) + ")$",
            },
            where,
        )
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise BackendError(f"{where}: unexpected answer (no items list)")
        return {str(q.get("name")): q for q in body["items"] if isinstance(q, dict)}

    async def _get(self, path: str, params: dict[str, str] | None, where: str) -> Any:
        try:
            response = await self._client().get(path, params=params)
        except httpx.TimeoutException:
            raise BackendTimeout(f"{where}: no answer within {self._timeout:.3g}s") from None
        except httpx.TransportError as err:
            raise BackendUnavailable(f"{where}: {type(err).__name__}: {err}") from None
        except httpx.HTTPError as err:
            raise BackendError(f"{where}: {type(err).__name__}: {err}") from None
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError:
                raise BackendError(
                    f"{where}: the answer is not JSON; does host point at the management API?"
                ) from None
        reason = _http_reason(response)
        message = f"{where}: HTTP {status} {reason}"
        if status == 404:
            raise TargetNotFound(f"{where}: not found (the queue or the vhost does not exist)")
        if status == 401:
            # the management API answers 401 both for a failed login and for a user that may
            # not see the vhost (or has no management tag)
            if "login failed" in reason.lower():
                raise BackendAuthError(message)
            raise BackendPermissionDenied(message)
        if status == 403:
            raise BackendPermissionDenied(message)
        if status == 400:
            raise MetadataError([f"{NAME}: the management API refused the query: {reason}"])
        if status >= 500:
            raise BackendUnavailable(message)
        raise BackendError(message)

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()


def _totals(items: tuple[Mapping[str, float | str], ...]) -> Measurement:
    totals: dict[str, float | str] = {"protocol": "http", "queues": float(len(items))}
    for key in (
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "publish_rate",
        "deliver_get_rate",
    ):
        totals[key] = sum(_fact(item, key) for item in items)
    return Measurement(_fact(totals, "messages"), totals, items)


def _http_reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("reason" in body or "error" in body):
        text = f"{body.get('error', '')}: {body.get('reason', '')}".strip(": ")
    else:
        text = response.text
    text = " ".join(text.split())
    return text[:_MAX_BODY] + ("..." if len(text) > _MAX_BODY else "")


def _queue_facts(queue: Any, where: str) -> dict[str, float | str]:
    """The counts and rates of one queue object of the management API."""
    if not isinstance(queue, dict):
        raise BackendError(f"{where}: unexpected answer (not a queue object)")
    name = str(queue.get("name", "?"))
    counts = {k: queue.get(k) for k in ("messages", "messages_ready", "messages_unacknowledged")}
    if not all(isinstance(v, int) for v in counts.values()):
        # Before the first statistics emission (a new queue, just after a broker restart, a
        # queue whose replica is down) the counts are absent: unknown, not 0. A plain
        # BackendError (UNAVAILABLE to KEDA): the connection is fine, no client rebuild.
        raise BackendError(
            f"{where}: the management API has no message counts for queue {name!r} yet "
            f"(state {queue.get('state', 'unknown')!r}); statistics are published every "
            "collect_statistics_interval"
        )
    stats = queue.get("message_stats")
    stats = stats if isinstance(stats, dict) else {}
    facts: dict[str, float | str] = {"queue": name}
    facts.update({k: float(v) for k, v in counts.items() if isinstance(v, int)})
    # no message_stats (or no *_details) = no traffic yet: a rate of 0 is the truth then
    facts["publish_rate"] = _rate(stats, "publish_details")
    facts["deliver_get_rate"] = _rate(stats, "deliver_get_details")
    return facts


def _rate(stats: Mapping[str, Any], key: str) -> float:
    details = stats.get(key)
    if isinstance(details, dict):
        rate = details.get("rate")
        if isinstance(rate, int | float) and math.isfinite(rate):
            return float(rate)
    return 0.0


# --- registry entry ---------------------------------------------------------------------------


class RabbitMQBackend:
    """The ``rabbitmq`` entry of the backend registry."""

    name: Final = NAME
    connection_keys: Final = CONNECTION_KEYS

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def parse(self, raw: Mapping[str, str]) -> RabbitTrigger:
        return parse_metadata(raw)

    def connect(self, connection: Hashable) -> BackendClient:
        assert isinstance(connection, RabbitConnection)
        if connection.protocol == "amqp":
            return AmqpClient(connection, self._timeout)
        return HttpClient(connection, self._timeout)
