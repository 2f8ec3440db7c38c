"""Enqueue times as job frameworks store them, read into epoch seconds.

Where the time is: a field of a JSON element (:func:`from_json`: Sidekiq's ``enqueued_at``; a
dot goes into a nested object, as Celery's ``headers``), or a hash field (:func:`from_text`:
BullMQ's ``timestamp``, RQ's ``enqueued_at``). What it may be:

* a number: epoch seconds, or epoch milliseconds from :data:`MILLISECONDS_FROM` on (a
  JSON number, or a string of one);
* an RFC 3339 string: ``2024-05-01T12:00:00Z``, with or without a fraction, ``Z`` or an offset
  (``+02:00``); ``T``, ``t`` or a space between date and time. Without an offset the zone is
  unknown, so it is refused rather than guessed.

Anything else raises :class:`TimestampError`, quoting what it read with
:func:`scaler.values.quote` (bounded, masked). Standard library only; nothing here knows Redis.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from scaler.values import quote

#: a number at or above this is epoch milliseconds: as seconds it would be the year 5138, as
#: milliseconds it is March 1973, before any job framework stored a time
MILLISECONDS_FROM: Final = 1e11
#: a number at or above this is no epoch time at all: milliseconds of the year 5138
_TOO_LATE: Final = 1e14

_NUMBER: Final = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")
_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_WHAT: Final = "epoch seconds, epoch milliseconds or an RFC 3339 time"


class TimestampError(ValueError):
    """An enqueue time that cannot be read; the message says why, after "<what was read>: "."""


def from_json(element: str, path: str) -> float:
    """Epoch seconds from the field ``path`` of a JSON object (dots go into nested objects)."""
    try:
        value: Any = json.loads(element)
    except (ValueError, RecursionError):  # JSONDecodeError, too many digits, too deep
        value = None
    if not isinstance(value, dict):
        raise TimestampError(f"not a JSON object: {quote(element)}")
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            raise TimestampError(
                f"no field {quote(path)} (timestampField), so its enqueue time is unknown: "
                f"{quote(element)}"
            )
        value = value[name]
    try:
        if isinstance(value, str):
            return from_text(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TimestampError(f"{quote(json.dumps(value))} is not {_WHAT}")
        if isinstance(value, int) and not 0 <= value < _TOO_LATE:
            # refused before float() overflows on thousands of digits
            raise TimestampError(f"{quote(str(value))} is not {_WHAT}")
        return from_number(float(value), json.dumps(value))
    except TimestampError as err:
        raise TimestampError(f"field {quote(path)}: {err}") from None


def from_text(text: str) -> float:
    """Epoch seconds from a string: a number (seconds or milliseconds) or an RFC 3339 time."""
    shown = text.strip()
    if _NUMBER.fullmatch(shown):
        return from_number(float(shown), text)
    match = _RFC3339.fullmatch(shown)
    if match is None:
        raise TimestampError(f"{quote(text)} is not {_WHAT}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    leap = int(second) == 60
    if int(second) > 60:
        raise TimestampError(f"{quote(text)} is not {_WHAT}")
    if offset is None:
        raise TimestampError(f"{quote(text)} has no UTC offset (Z or +hh:mm): its zone is unknown")
    try:
        zone = UTC if offset in ("Z", "z") else _zone(offset)
        # a leap second (:60) is the first instant of the next minute
        fields = (int(year), int(month), int(day), int(hour), int(minute))
        start = datetime(*fields, 59 if leap else int(second), tzinfo=zone)
    except ValueError:
        raise TimestampError(f"{quote(text)} is not {_WHAT}") from None
    return start.timestamp() + (1.0 if leap else 0.0) + (float("0" + fraction) if fraction else 0.0)


def from_number(value: float, shown: str | None = None) -> float:
    """Epoch seconds from epoch seconds or milliseconds, told apart by magnitude.

    :param shown: the value as it was read, for the error
    """
    if not math.isfinite(value) or value < 0 or value >= _TOO_LATE:
        raise TimestampError(f"{quote(shown or repr(value))} is not {_WHAT}")
    return value / 1000 if value >= MILLISECONDS_FROM else value


def _zone(offset: str) -> timezone:
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(offset)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if offset[0] == "-" else delta)
