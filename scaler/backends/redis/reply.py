"""What a script reply says about each resource: its measurement, or the error reading it.

A length is KEDA's: a list, set, sorted set or hash counts; a missing key is 0; another type is
:class:`~scaler.errors.UnsupportedResource` naming the type. An age (``OldestAge``, lists only)
is Redis ``TIME`` minus the oldest element's enqueue time (``age``): 0 for an empty list, 0 for
a time ahead of Redis's clock (reported as a fact), and an error naming the missing fact when
the element, its hash or its field cannot say when it was enqueued, never 0.

Facts: ``type`` (the key's type); with an age :data:`~scaler.backends.base.OLDEST_AGE`,
``broker_time`` (Redis ``TIME``, epoch seconds), ``oldest_enqueued_at`` (epoch seconds) and
``oldest_in_future_seconds`` when that is ahead of the clock; with a processing list
:data:`~scaler.backends.base.IN_FLIGHT`, its length.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, Measurement
from scaler.backends.redis.age import TimestampError, from_json, from_text
from scaler.backends.redis.params import PLACEHOLDER
from scaler.backends.redis.scripts import READ_GROUP
from scaler.backends.redis.trigger import AgeSpec, RedisList
from scaler.errors import UnsupportedResource
from scaler.values import quote

#: one value of a script's reply: a bulk string, an integer, or nil
Value = bytes | int | None
Facts = dict[str, float | str]


def length(
    where: str, key: str, key_type: Value, count: Value
) -> Measurement | UnsupportedResource:
    """A key's length from its type and count (-1: a type that has no length)."""
    kind = _text(key_type)
    if _int(count) < 0:
        return UnsupportedResource(
            f"{where}: key {key!r} is a {kind}, not a list, set, sorted set or hash"
        )
    return Measurement(float(_int(count)), {"type": kind})


def read(
    where: str, resources: Sequence[RedisList], reply: Sequence[Value]
) -> list[Measurement | UnsupportedResource]:
    """Each resource's outcome from a reply of ``scripts.READ`` for ``resources``, in order."""
    now = _int(reply[0]) + _int(reply[1]) / 1_000_000
    outcomes: list[Measurement | UnsupportedResource] = []
    for index, resource in enumerate(resources):
        start = 2 + index * READ_GROUP
        try:
            outcomes.append(_measure(where, resource, now, reply[start : start + READ_GROUP]))
        except UnsupportedResource as err:
            outcomes.append(err)
    return outcomes


def _measure(where: str, resource: RedisList, now: float, group: Sequence[Value]) -> Measurement:
    key_type, count, element, hash_type, field, processing_type, processing = group
    kind = _text(key_type)
    if resource.age is not None and kind not in ("list", "none"):
        raise UnsupportedResource(
            f"{where}: key {resource.key!r} is a {kind}; mode OldestAge reads lists only"
        )
    measured = length(where, resource.key, key_type, count)
    if isinstance(measured, UnsupportedResource):
        raise measured
    facts: Facts = dict(measured.facts)
    if resource.age is not None:
        enqueued = _enqueued_at(where, resource.key, resource.age, element, hash_type, field)
        facts.update(_age(now, enqueued))
    if resource.processing is not None:
        if _int(processing) < 0:
            raise UnsupportedResource(
                f"{where}: processing list {resource.processing!r} is a "
                f"{_text(processing_type)}, not a list"
            )
        facts[IN_FLIGHT] = float(_int(processing))
    return Measurement(measured.value, facts)


def _age(now: float, enqueued: float | None) -> Facts:
    facts: Facts = {"broker_time": now}
    if enqueued is None:  # an empty list: nothing waits
        facts[OLDEST_AGE] = 0.0
        return facts
    facts["oldest_enqueued_at"] = enqueued
    if enqueued > now:
        # a producer's clock ahead of Redis's: nothing has waited yet, as far as Redis knows
        facts["oldest_in_future_seconds"] = enqueued - now
    facts[OLDEST_AGE] = max(0.0, now - enqueued)
    return facts


def _enqueued_at(
    where: str, key: str, age: AgeSpec, element: Value, hash_type: Value, field: Value
) -> float | None:
    """Epoch seconds of the oldest element's enqueue time; None for an empty list."""
    if element is None:
        return None
    text = _text(element)
    oldest = f"{where}: the oldest element of {key!r}"
    if age.hash_key is None:
        try:
            return from_json(text, age.field)
        except TimestampError as err:
            raise UnsupportedResource(f"{oldest}: {err}") from None
    hash_name = quote(age.hash_key.replace(PLACEHOLDER, text))
    hash_kind = _text(hash_type)
    if hash_kind == "none":
        raise UnsupportedResource(
            f"{oldest} names the hash {hash_name}, which does not exist, so its enqueue time "
            f"(field {quote(age.field)}) is unknown"
        )
    if hash_kind != "hash":
        raise UnsupportedResource(f"{oldest} names {hash_name}, which is a {hash_kind}, not a hash")
    if field is None:
        raise UnsupportedResource(
            f"{where}: the hash {hash_name} of the oldest element of {key!r} has no field "
            f"{quote(age.field)} (timestampField), so its enqueue time is unknown"
        )
    try:
        return from_text(_text(field))
    except TimestampError as err:
        raise UnsupportedResource(
            f"{where}: field {quote(age.field)} of the hash {hash_name}: {err}"
        ) from None


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "" if value is None else str(value)


def _int(value: Value) -> int:
    return int(value) if value is not None else 0
