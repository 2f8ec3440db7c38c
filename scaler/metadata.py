"""Declared trigger parameters, and the one parser that reads them from ``scalerMetadata``.

A backend declares each metadata key once, as a field of a frozen dataclass, in the spirit of
KEDA's ``keda:"name=listLength, default=5"`` struct tags::

    @dataclass(frozen=True, slots=True, kw_only=True)
    class RedisParams:
        list_name: str = param("listName", resource_name, doc="the key to measure")
        list_length: int = param("listLength", integer, default=5, check=positive, doc=...)

Everything else derives from the declaration: :meth:`Reading.read` (values, defaults, every
problem at once), the keys a connection profile supplies (:func:`connection_keys`), the keys
never shown (:func:`secret_keys`), the metadata fuzz test and the docs' parameter tables.

Rules copied from KEDA's typed config so that metadata moves over unchanged:

* a key may also arrive as ``<key>FromEnv``: KEDA resolves the env var on the scale target and
  forwards the *value* under that name; the plain key wins when both are set;
* values are whitespace-trimmed and an empty value counts as absent;
* unknown keys are ignored (KEDA forwards its own ``scalerAddress``, ``enableTLS``...).

Unlike a parser that stops at the first problem, :class:`Reading` collects every problem (each
field's, then the backend's cross-field rules, KEDA's ``Validate()``) and :meth:`Reading.finish`
raises one :class:`~scaler.errors.MetadataError` listing them all. A secret value is never quoted.

This module knows nothing of backends or gRPC; backends import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from scaler.errors import MetadataError
from scaler.values import InvalidValue, quote, text

T = TypeVar("T")
P = TypeVar("P")

#: the key that selects the backend; every other key belongs to the backend
BACKEND_KEY: Final = "backend"
FROM_ENV_SUFFIX: Final = "FromEnv"
#: where a declaration hides in a dataclass field's metadata
_PARAM: Final = "scaler.param"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


@dataclass(frozen=True, slots=True)
class Param(Generic[T]):
    """One declared metadata key.

    :param key: KEDA's name for it
    :param convert: string -> value; raises :class:`~scaler.values.InvalidValue`
    :param default: used when the key is absent; :data:`REQUIRED` makes it mandatory
    :param aliases: other names accepted for it (KEDA's ``name=host;hosts``)
    :param secret: never quoted in a message (nor shown in ``repr`` by the dataclasses using it)
    :param choices: the only values allowed (after conversion)
    :param check: value -> problem or None (ranges)
    :param connection: says where or how to connect, so a connection profile supplies it
    :param endpoint: names a network endpoint: ``host:port`` (a comma list), ``host``, ``port``
        or ``uri``; the fuzz test points these at closed loopback ports
    :param doc: what it means, for the reference docs
    :param shown_default: the default as the docs say it, when it is not a plain value
    """

    key: str
    convert: Callable[[str], T]
    default: T | _Required | None
    aliases: tuple[str, ...] = ()
    secret: bool = False
    choices: tuple[T, ...] = ()
    check: Callable[[T], str | None] | None = None
    connection: bool = False
    endpoint: str = ""
    doc: str = ""
    shown_default: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The key and its aliases."""
        return (self.key, *self.aliases)

    @property
    def required(self) -> bool:
        return isinstance(self.default, _Required)


def param(
    key: str,
    convert: Callable[[str], Any] = text,
    *,
    default: Any = REQUIRED,
    aliases: tuple[str, ...] = (),
    secret: bool = False,
    choices: tuple[Any, ...] = (),
    check: Callable[[Any], str | None] | None = None,
    connection: bool = False,
    endpoint: str = "",
    doc: str = "",
    shown_default: str | None = None,
) -> Any:
    """A dataclass field declaring one metadata key (see :class:`Param`); secrets leave repr."""
    declaration = Param(
        key,
        convert,
        default,
        aliases,
        secret,
        choices,
        check,
        connection,
        endpoint,
        doc,
        shown_default,
    )
    extra = {_PARAM: declaration}
    if declaration.required:
        return dataclasses.field(repr=not secret, metadata=extra)
    return dataclasses.field(default=default, repr=not secret, metadata=extra)


def declared(params: type[Any]) -> tuple[tuple[str, Param[Any]], ...]:
    """(attribute, declaration) of every declared key of a parameters class, in order."""
    return tuple(
        (f.name, f.metadata[_PARAM]) for f in dataclasses.fields(params) if _PARAM in f.metadata
    )


def connection_keys(params: type[Any]) -> frozenset[str]:
    """Keys (aliases included) that say where and how to connect: what a profile supplies."""
    return frozenset(name for _, p in declared(params) if p.connection for name in p.names)


def secret_keys(params: type[Any]) -> frozenset[str]:
    """Keys (aliases and ``FromEnv`` forms included) whose values are never shown."""
    return frozenset(
        name + suffix
        for _, p in declared(params)
        if p.secret
        for name in p.names
        for suffix in ("", FROM_ENV_SUFFIX)
    )


class Reading:
    """Reading one ``scalerMetadata`` map, collecting every problem.

    :param raw: the metadata exactly as KEDA sent it
    :param context: prefix for messages, e.g. ``"redis"``
    """

    def __init__(self, raw: Mapping[str, str], context: str = "") -> None:
        self._raw = raw
        self._context = context
        self.problems: list[str] = []

    def read(self, params: type[P]) -> P:
        """Every declared key of ``params``; a refused value leaves the field at its default
        (None when required) and records the problem, so cross-field rules still run and
        :meth:`finish` reports everything at once."""
        values = {name: self._value(p) for name, p in declared(params)}
        return params(**values)

    def lookup(self, key: str, aliases: tuple[str, ...] = ()) -> tuple[str, str] | None:
        """(name it came under, trimmed value): the first non-empty among ``key``,
        ``keyFromEnv`` and the aliases."""
        for name in (key, *aliases):
            for candidate in (name, name + FROM_ENV_SUFFIX):
                value = self._raw.get(candidate)
                if value is not None and value.strip():
                    return candidate, value.strip()
        return None

    def given(self, key: str, aliases: tuple[str, ...] = ()) -> bool:
        """Whether the key (or its FromEnv form or an alias) has a non-empty value."""
        return self.lookup(key, aliases) is not None

    @property
    def failed(self) -> bool:
        """Whether a problem was recorded: a required field may then be None."""
        return bool(self.problems)

    def problem(self, message: str) -> None:
        """Record a cross-field problem (KEDA's ``Validate()`` rules)."""
        self.problems.append(message)

    def finish(self) -> None:
        """Raise one MetadataError with every problem recorded, if any."""
        if self.problems:
            prefix = f"{self._context}: " if self._context else ""
            raise MetadataError(prefix + p for p in self.problems)

    def _value(self, p: Param[Any]) -> Any:
        found = self.lookup(p.key, p.aliases)
        fallback = None if p.required else p.default
        if found is None:
            if p.required:
                self.problems.append(f"missing required parameter {p.key}")
            return fallback
        name, raw = found
        shown = "value" if p.secret else quote(raw)
        try:
            value = p.convert(raw)
        except InvalidValue as err:
            self.problems.append(f"{name}: {shown} {err}")
            return fallback
        if p.choices and value not in p.choices:
            options = ", ".join(str(c) for c in p.choices)
            self.problems.append(f"{name}: {shown} must be one of [{options}]")
            return fallback
        if p.check is not None and (problem := p.check(value)) is not None:
            self.problems.append(f"{name}: {shown} {problem}")
            return fallback
        return value
