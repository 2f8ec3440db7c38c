"""What a reply of ``stream_scripts.STREAMS`` says about each stream resource: its measurement, or
the error reading it.

The value is the stream's length (``XLEN``; 0 for a missing stream). The facts are raw, and each
trigger picks its measure from them (``stream_trigger``):

* always: ``type``, ``stream_exists`` (0/1), ``xlen``; with a group, ``group_exists`` (0/1);
  for an ages read, ``broker_time`` (Redis ``TIME``, epoch seconds: a count's facts leave it
  out, so a count that did not change is the same measurement and wakes no idle watcher);
* with an existing group: ``pending`` (the ``XPENDING`` summary's count, also
  :data:`~scaler.backends.base.IN_FLIGHT`), ``last_delivered_id``, ``lag`` and ``lag_source``:
  ``xinfo`` when ``XINFO GROUPS`` gave a lag no larger than ``XLEN``, else, for a lag read
  only (the others leave such a lag out), ``counted`` (the entries after the last-delivered id,
  bounded by ``XLEN``; a count beyond ``COUNT_LIMIT`` is
  :class:`~scaler.errors.UnsupportedResource`) with ``lag_counted_because``
  (``null``: Redis could not say, or is older than 7.0; ``larger_than_xlen``); ``xinfo_lag`` and
  ``entries_read`` when Redis gave them; when counted with entries-read known,
  ``entries_added`` and ``deleted_undelivered`` (entries added after the group's position but
  gone, trimmed or deleted, before it read them);
* the ages, against ``TIME``: ``oldest_undelivered_age_seconds`` (the first entry after the
  last-delivered id; 0 when none), which is also :data:`~scaler.backends.base.OLDEST_AGE` (the
  per-resource gauge), and ``oldest_pending_age_seconds`` (the smallest pending id; 0 when
  none), with the ids they come from (``oldest_undelivered_id``, ``oldest_pending_id``).

An entry id is the Redis server's clock in milliseconds when Redis generates it (``*``); an id
given explicitly whose milliseconds are no plausible time (before 2000, or more than a day ahead
of ``TIME``) has no age: for a resource that reads ages it is
:class:`~scaler.errors.UnsupportedResource` quoting the id, otherwise its age is left out.

A key of another type is :class:`~scaler.errors.UnsupportedResource` naming the type. A missing
stream or group is :class:`~scaler.errors.TargetNotFound` for a resource that needs the group
(pending entries, ages); for the others the facts say so and the trigger answers as KEDA does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.backends.redis.reply import Value
from scaler.backends.redis.stream_scripts import COUNT_LIMIT, NOT_COUNTED, STREAM_GROUP, TOO_MANY
from scaler.backends.redis.stream_trigger import AGES_READ, PENDING_AGE, RedisStream
from scaler.errors import TargetNotFound, UnsupportedResource
from scaler.values import quote

#: 2000-01-01T00:00:00Z in epoch milliseconds: an id before it was not made by a clock
_EARLIEST_MS: Final = 946_684_800_000
#: how far an id may be ahead of Redis's clock (a clock stepped back) and still be a time
_AHEAD_MS: Final = 86_400_000
UNDELIVERED_AGE: Final = "oldest_undelivered_age_seconds"

Facts = dict[str, float | str]
Outcome = Measurement | TargetNotFound | UnsupportedResource


def read(where: str, resources: Sequence[RedisStream], reply: Sequence[Value]) -> list[Outcome]:
    """Each resource's outcome from a reply of ``STREAMS`` for ``resources``, in order."""
    now = _int(reply[0]) + _int(reply[1]) / 1_000_000
    outcomes: list[Outcome] = []
    for index, resource in enumerate(resources):
        start = 2 + index * STREAM_GROUP
        try:
            outcomes.append(_measure(where, resource, now, reply[start : start + STREAM_GROUP]))
        except (TargetNotFound, UnsupportedResource) as err:
            outcomes.append(err)
    return outcomes


def _measure(where: str, resource: RedisStream, now: float, values: Sequence[Value]) -> Measurement:
    key_type, xlen, found, pending, last, read, lag, oldest_pending = values[:8]
    undelivered, counted, added = values[8:]
    kind, stream, group = _text(key_type), resource.stream, resource.group
    if kind not in ("stream", "none"):
        raise UnsupportedResource(f"{where}: key {stream!r} is a {kind}, not a stream")
    length = _int(xlen)
    facts: Facts = {"type": kind, "stream_exists": float(kind == "stream"), "xlen": float(length)}
    if resource.read == AGES_READ:
        facts["broker_time"] = now
    if group is None:
        return Measurement(float(length), facts)
    facts["group_exists"] = float(_int(found))
    if resource.needs_group and kind == "none":
        raise TargetNotFound(
            f"{where}: stream {stream!r} does not exist, so neither does its consumer group "
            f"{group!r} (pending entries and ages need the group)"
        )
    if resource.needs_group and not _int(found):
        raise TargetNotFound(
            f"{where}: stream {stream!r} has no consumer group {group!r} (pending entries and "
            "ages need the group)"
        )
    if not _int(found):
        return Measurement(float(length), facts)
    facts["pending"] = facts[IN_FLIGHT] = float(_int(pending))
    facts["last_delivered_id"] = _text(last)
    if _int(counted) == TOO_MANY:
        raise UnsupportedResource(
            f"{where}: stream {stream!r}: Redis gives no usable lag for group {group!r} (null "
            f"after XGROUP SETID or XDEL, or larger than the stream after XTRIM), and counting "
            f"the entries after its last-delivered id {_text(last)!r} would read more than "
            f"{COUNT_LIMIT} entries while Redis serves nothing else; use pendingEntriesCount or "
            "an age mode until the group has read past them"
        )
    facts.update(_lag(length, lag, read, counted, added))
    no_time = []
    for fact, entry, what in (
        (UNDELIVERED_AGE, undelivered, "the first undelivered entry"),
        (PENDING_AGE, oldest_pending, "the oldest pending entry"),
    ):
        if entry is not None:
            facts[fact.replace("_age_seconds", "_id")] = _text(entry)
        age = _age(now, entry)
        if age is None:
            no_time.append(f"{what} has the id {quote(_text(entry))}")
        else:
            facts[fact] = age
    if no_time and resource.read == AGES_READ:
        # both ages come from one read, so the message names every id that has no time
        raise UnsupportedResource(
            f"{where}: stream {stream!r}, group {group!r}: {' and '.join(no_time)}, which is no "
            "time (its milliseconds are before 2000 or more than a day ahead of Redis's clock): "
            "ages need ids that Redis generates (XADD with *)"
        )
    if UNDELIVERED_AGE in facts:
        facts[OLDEST_AGE] = facts[UNDELIVERED_AGE]
    return Measurement(float(length), facts)


def _lag(length: int, lag: Value, read: Value, counted: Value, added: Value) -> Facts:
    """The group's lag: Redis's when it gave a usable one, else the script's count (made for a
    lag read only; the other reads leave an unusable lag out)."""
    facts: Facts = {}
    if read is not None:
        facts["entries_read"] = float(_int(read))
    if lag is not None:
        facts["xinfo_lag"] = float(_int(lag))
    if lag is not None and _int(lag) <= length:
        facts["lag"] = float(_int(lag))
        facts["lag_source"] = "xinfo"
        return facts
    if _int(counted) == NOT_COUNTED:
        return facts
    facts["lag"] = float(_int(counted))
    facts["lag_source"] = "counted"
    # null: Redis cannot say (or, before Redis 7.0, does not report a lag at all)
    facts["lag_counted_because"] = "null" if lag is None else "larger_than_xlen"
    if added is not None and read is not None:
        facts["entries_added"] = float(_int(added))
        facts["deleted_undelivered"] = float(max(0, _int(added) - _int(read) - _int(counted)))
    return facts


def _age(now: float, entry: Value) -> float | None:
    """Seconds since an entry id's time, on Redis's clock (``now``); 0 without an entry; None
    for an id that is no time."""
    if entry is None:
        return 0.0
    ms = int(_text(entry).partition("-")[0])
    if not _EARLIEST_MS <= ms <= now * 1000 + _AHEAD_MS:
        return None
    # an id a little ahead (Redis keeps ids increasing when its clock steps back) waited 0
    return max(0.0, now - ms / 1000)


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def _int(value: Value) -> int:
    return int(value) if value is not None else 0
