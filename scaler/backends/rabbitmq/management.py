"""The management API client of ``backend: rabbitmq`` (httpx): queue details, batched reads.

``GET /api/queues/<vhost>/<queue>``, or with ``useRegex`` one page of
``GET /api/queues/<vhost>?use_regex=true&name=<regex>`` (more than one page is an error, as in
KEDA). It sees ready *and* unacknowledged messages, the publish and deliver/get rates, and the
timestamp of each queue's head message, whose age it measures against the broker's own clock:
the ``Date`` header of the same answer. A watcher batch reads every watched queue of a vhost in
one call (an exact-name regex).

The client returns raw per-queue facts (:class:`~scaler.backends.base.Measurement` ``items``,
named in ``modes``), and the work in flight of every read; the trigger applies
``excludeUnacknowledged``, ``operation``, ``activeWhileInFlight`` and the mode. This module is
the package's only importer of httpx (named so as not to shadow the standard library's
``http``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

import httpx

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Batch, Client, Measurement
from scaler.backends.rabbitmq.modes import AGE, AHEAD, BROKER_TIME, HEAD_TIMESTAMP, QUEUE_TYPE, fact
from scaler.backends.rabbitmq.params import NAME
from scaler.backends.rabbitmq.trigger import CLIENT_NAME, RabbitConnection, RabbitQueue
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

#: queues per management call in a watcher batch (the API's largest page is 500)
_BATCH_PAGE: Final = 200
#: longest part of an error answer quoted in a message
_MAX_BODY: Final = 200


class HttpClient(Client[RabbitQueue]):
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
                verify=c.ssl_context() if c.tls else True,
                follow_redirects=False,
                headers={"user-agent": CLIENT_NAME},
            )
        return self._http

    async def measure(self, resource: RabbitQueue) -> Measurement:
        vhost = quote(resource.vhost, safe="")
        if resource.use_regex:
            where = (
                f"{self._connection.where} vhost {resource.vhost!r} queues matching "
                f"{resource.name!r}"
            )
            # KEDA's query, parameter for parameter (`pagination` is ignored by RabbitMQ)
            body, now = await self._get(
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
            items = tuple(_queue_facts(q, where, now) for q in body["items"])
        else:
            where = f"{self._connection.where} vhost {resource.vhost!r} queue {resource.name!r}"
            body, now = await self._get(
                f"/api/queues/{vhost}/{quote(resource.name, safe='')}", None, where
            )
            items = (_queue_facts(body, where, now),)
        return _totals(items, now)

    async def measure_many(self, resources: Sequence[RabbitQueue]) -> Batch[RabbitQueue]:
        """Watched queues of one vhost in one management call (an exact-name regex), so a
        watcher batch costs one request per vhost; regex triggers are read one by one."""
        results: dict[RabbitQueue, Measurement | BaseException] = {}
        requests = 0
        by_vhost: dict[str, list[RabbitQueue]] = {}
        for resource in resources:
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
                    found, now = await self._queues_named(vhost, [q.name for q in chunk])
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
                        item = _queue_facts(body, where, now)
                    except BackendError as err:
                        results[queue] = err
                        continue
                    results[queue] = _totals((item,), now)
        return results, requests

    async def _queues_named(
        self, vhost: str, names: list[str]
    ) -> tuple[dict[str, Any], float | None]:
        where = f"{self._connection.where} vhost {vhost!r}"
        body, now = await self._get(
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
        return {str(q.get("name")): q for q in body["items"] if isinstance(q, dict)}, now

    async def _get(
        self, path: str, params: dict[str, str] | None, where: str
    ) -> tuple[Any, float | None]:
        """The answer's JSON, and the broker's clock when it answered (None: no usable Date)."""
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
                return response.json(), _broker_time(response)
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


def _totals(items: tuple[Mapping[str, float | str], ...], now: float | None) -> Measurement:
    totals: dict[str, float | str] = {"protocol": "http", "queues": float(len(items))}
    for key in (
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "publish_rate",
        "deliver_get_rate",
    ):
        totals[key] = sum(fact(item, key) for item in items)
    # on every read, whatever the triggers' keys: the in-flight gauge's
    totals[IN_FLIGHT] = totals["messages_unacknowledged"]
    if now is not None:
        totals[BROKER_TIME] = now
    # the oldest head of the matched queues, whatever a trigger's `operation`; unknown (and
    # left out, never 0) when a queue with ready messages has no age
    if all(AGE in item for item in items):
        totals[OLDEST_AGE] = max((fact(item, AGE) for item in items), default=0.0)
    ahead = max((fact(item, AHEAD) for item in items), default=0.0)
    if ahead > 0:
        totals[AHEAD] = ahead
    return Measurement(fact(totals, "messages"), totals, items)


def _broker_time(response: httpx.Response) -> float | None:
    """The broker's clock from the answer's ``Date`` header (RFC 9110: one-second resolution,
    set by the management API's web server when it answers); None when absent or unreadable."""
    header = response.headers.get("date")
    if header is None:
        return None
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, of unknown origin; an HTTP date is GMT anyway
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


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


def _queue_facts(queue: Any, where: str, now: float | None) -> dict[str, float | str]:
    """The counts, rates and head age of one queue object of the management API; ``now`` is
    the broker's clock when it answered."""
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
    kind = queue.get("type")
    if isinstance(kind, str):
        facts[QUEUE_TYPE] = kind
    facts.update(_head_age(queue, fact(facts, "messages_ready"), now))
    return facts


def _head_age(queue: Mapping[str, Any], ready: float, now: float | None) -> dict[str, float]:
    """The head timestamp and its age on the broker's clock, when known.

    No ready message is age 0: nothing waits, although RabbitMQ's head timestamp (classic
    queues) also covers the messages delivered and not yet acknowledged, which are in work; so
    with ready messages it is the oldest of those and the ready head. A timestamp
    ahead of the broker's clock (a publisher's clock running fast) counts 0, and how far ahead
    it is is kept. A missing age is left out, for the trigger to explain, never taken as 0.
    """
    head = queue.get(HEAD_TIMESTAMP)
    found: dict[str, float] = {}
    if isinstance(head, int | float) and not isinstance(head, bool) and math.isfinite(head):
        found[HEAD_TIMESTAMP] = float(head)
    if ready == 0:
        found[AGE] = 0.0
    elif HEAD_TIMESTAMP in found and now is not None:
        age = now - found[HEAD_TIMESTAMP]
        found[AGE] = max(0.0, age)
        if age < 0:
            found[AHEAD] = -age
    return found


def _rate(stats: Mapping[str, Any], key: str) -> float:
    details = stats.get(key)
    if isinstance(details, dict):
        rate = details.get("rate")
        if isinstance(rate, int | float) and math.isfinite(rate):
            return float(rate)
    return 0.0
