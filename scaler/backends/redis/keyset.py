"""Many keys per trigger, for the list and the stream backends alike: the keys that ask for them
(``useGlob``, ``operation``, ``globRefreshSeconds``, ``maxKeys``), declared once; what a
``listName`` or ``stream`` then names (one key, a comma list, a glob: :class:`KeySet`); and how
the measurements of its keys become one measurement, each key an item (:func:`gather`), which a
trigger combines with its ``operation`` (:func:`per_key`, then ``base.combine``).

A glob is resolved with SCAN by ``globs``; the clients read every key of a batch in one script
call per server (``reads``). Nothing here talks to Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from scaler.backends.base import IN_FLIGHT, OLDEST_AGE, OPERATIONS, Measurement
from scaler.metadata import Reading, param
from scaler.values import boolean, integer, number, positive, quote

DEFAULT_MAX_KEYS: Final = 1000
DEFAULT_REFRESH: Final = 30.0
#: per item of a measurement of several keys: the key, and its value (length, ``XLEN``)
KEY: Final = "key"
VALUE: Final = "value"
#: a fact of a measurement of several keys: how many keys it read
KEYS: Final = "keys"


@dataclass(frozen=True, kw_only=True)
class ManyParams:
    """The keys of a trigger that reads several Redis keys (this scaler's own; KEDA reads one)."""

    use_glob: bool = param(
        "useGlob",
        boolean,
        default=False,
        doc="the key (`listName`, `stream`) is a glob in Redis's `SCAN MATCH` syntax (`*`, `?`, "
        "`[abc]`, `\\` escapes), resolved with SCAN (on every master of a Cluster); without it "
        "a comma list names several keys (`a,b,c`)",
    )
    operation: str = param(
        "operation",
        default="sum",
        choices=OPERATIONS,
        shown_default="`sum`; `max` with an age `mode`",
        doc="how the values of several keys combine (`avg` is the mean); an age defaults to "
        "`max`, the oldest job anywhere",
    )
    glob_refresh_seconds: float = param(
        "globRefreshSeconds",
        number,
        default=DEFAULT_REFRESH,
        check=positive,
        doc="`useGlob`: seconds the keys a glob matched are reused before SCAN runs again (a "
        "number > 0): a key created later counts within this time",
    )
    max_keys: int = param(
        "maxKeys",
        integer,
        default=DEFAULT_MAX_KEYS,
        check=positive,
        doc="the most keys one trigger reads (integer > 0): a glob matching more is "
        "`FAILED_PRECONDITION`, a longer comma list `INVALID_ARGUMENT`",
    )


@dataclass(frozen=True, slots=True)
class KeySet:
    """The keys of a trigger that reads several: a comma list's, or those a glob matches.

    :param names: the keys of a comma list, in order, each once; empty for a glob
    :param pattern: the glob (``SCAN MATCH``); None for a comma list
    :param max_keys: a glob matching more keys is an error (a comma list is checked when parsed,
        and keeps the default, so that it never splits a shared read)
    :param refresh: seconds a glob's keys are reused
    """

    names: tuple[str, ...] = ()
    pattern: str | None = None
    max_keys: int = DEFAULT_MAX_KEYS
    refresh: float = DEFAULT_REFRESH


def key_set(
    key: str, value: str | None, params: ManyParams, reading: Reading
) -> tuple[str, KeySet | None] | None:
    """What the value of ``key`` (``listName``, ``stream``) names: the resource's key (the key, the
    pattern, or the comma list as read) and its :class:`KeySet` (None for one key); None after a
    problem (each recorded)."""
    if not params.use_glob and reading.given("globRefreshSeconds"):
        reading.problem("globRefreshSeconds applies only with useGlob: true")
    if value is None:
        return None
    if params.use_glob:
        return value, KeySet((), value, params.max_keys, params.glob_refresh_seconds)
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not names:
        reading.problem(f"{key}: {quote(value)} names no key")
        return None
    if len(names) == 1:
        return names[0], None
    if len(names) > params.max_keys:
        reading.problem(
            f"{key} names {len(names)} keys, more than maxKeys ({params.max_keys}): raise maxKeys "
            "or use a glob (useGlob)"
        )
        return None
    return ",".join(names), KeySet(names)


def operation(params: ManyParams, reading: Reading, age: bool) -> str:
    """``operation``; for an age ``max`` unless it is given: the oldest job anywhere is the
    age that matters, as RabbitMQ's age mode does over a regex."""
    return "max" if age and not reading.given("operation") else params.operation


def gather(parts: Sequence[tuple[str, Measurement | BaseException]]) -> Measurement | BaseException:
    """One measurement of several keys, each an item (:data:`KEY`, :data:`VALUE` and its facts),
    or the first key's error: a key that cannot be read fails the trigger, never counts as 0.

    Its value is the sum of the keys' values; :data:`KEYS` says how many were read;
    :data:`~scaler.backends.base.OLDEST_AGE` (the largest) and
    :data:`~scaler.backends.base.IN_FLIGHT` (the sum), when every key has them, are the
    per-resource gauges, whatever a trigger's ``operation``.
    """
    items: list[dict[str, float | str]] = []
    for key, outcome in parts:
        if isinstance(outcome, BaseException):
            return outcome
        items.append({KEY: key, VALUE: outcome.value, **outcome.facts})
    facts: dict[str, float | str] = {KEYS: float(len(items))}
    for fact, total in ((OLDEST_AGE, max), (IN_FLIGHT, sum)):
        values = [float(item[fact]) for item in items if fact in item]
        if items and len(values) == len(items):
            facts[fact] = float(total(values))
    return Measurement(sum(float(item[VALUE]) for item in items), facts, tuple(items))


def per_key(measurement: Measurement) -> list[Measurement]:
    """Each key of a gathered measurement, as the measurement of that key read alone."""
    return [Measurement(float(item[VALUE]), item) for item in measurement.items]
