"""Turn a ScaledObject's ``scalerMetadata`` (a flat string map) into typed values.

Rules copied from KEDA's typed config so that metadata moves over unchanged:

* a key may also arrive as ``<key>FromEnv``: KEDA resolves the env var on the scale target and
  forwards the *value* under that name; the plain key wins when both are set;
* values are whitespace-trimmed and an empty value counts as absent;
* booleans follow Go's ``strconv.ParseBool``;
* unknown keys are ignored (KEDA forwards its own ``scalerAddress``, ``enableTLS``...).

Unlike a parser that stops at the first problem, :class:`MetadataReader` collects every problem
and :meth:`MetadataReader.finish` raises one :class:`~scaler.errors.MetadataError` listing them
all. A secret value is never quoted in a message; URIs are quoted with their userinfo masked.

This module knows nothing of backends or gRPC; backends import it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar, overload
from urllib.parse import urlsplit

from scaler.errors import MetadataError

T = TypeVar("T")

#: the key that selects the backend; every other key belongs to the backend
BACKEND_KEY: Final = "backend"
FROM_ENV_SUFFIX: Final = "FromEnv"
#: longest value quoted back in an error message
_MAX_QUOTED: Final = 80

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INTEGER = re.compile(r"[+-]?[0-9]+")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


class InvalidValue(ValueError):
    """Raised by a converter; its message completes "<key>: '<value>' ..."."""


def boolean(text: str) -> bool:
    """Go's strconv.ParseBool, as KEDA uses."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidValue("is not a boolean (true or false)")


def integer(text: str) -> int:
    """A base-10 integer; no underscores, no decimals."""
    if not _INTEGER.fullmatch(text):
        raise InvalidValue("is not a valid integer")
    return int(text)


def number(text: str) -> float:
    """A finite decimal number."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue("is not a valid number") from None
    if not math.isfinite(value):
        raise InvalidValue("is not a finite number")
    return value


def text(text: str) -> str:
    """Any non-empty string, as given (after trimming)."""
    return text


_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")


def resource_name(text: str) -> str:
    """A resource name (list, queue, group, topic): any string but one embedding a URI with a
    password. That is a connection string in the wrong key, and as a name its password would
    reach logs, error messages and metric labels."""
    if _CREDENTIALS.search(text):
        raise InvalidValue(
            "contains a URI with a password: a connection string belongs in the address or host "
            "key, its password in password"
        )
    return text


def positive(value: float) -> str | None:
    """A check: the value must be > 0."""
    return None if value > 0 else "must be greater than 0"


def non_negative(value: float) -> str | None:
    """A check: the value must be >= 0."""
    return None if value >= 0 else "must be 0 or greater"


_HOST = re.compile(r"[A-Za-z0-9._%-]+|\[[0-9A-Fa-f:.%]+\]|[0-9A-Fa-f:]+")


def host_port(value: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port``) as (host, port), or None if it is anything else."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not _HOST.fullmatch(host):
        return None
    return host.strip("[]"), int(port)


def mask_uri(value: str) -> str:
    """Hide the password of a ``scheme://user:password@host`` value."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "<unparseable URI>"
    if parts.password is None and "@" not in parts.netloc:
        return value
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}" if user else f"***@{host}").geturl()


def quote(value: str) -> str:
    """Quote a user value for an error message: masked, bounded, on one line."""
    shown = mask_uri(value) if "://" in value else value
    if "@" in shown and "***@" not in shown:
        # user:password@host without a scheme: whatever precedes the last @ may be a secret
        shown = "***@" + shown.rsplit("@", 1)[1]
    if len(shown) > _MAX_QUOTED:
        shown = shown[:_MAX_QUOTED] + "..."
    return repr(shown)


class MetadataReader:
    """Reads typed parameters out of one ``scalerMetadata`` map, collecting every problem.

    :param raw: the metadata exactly as KEDA sent it
    :param context: prefix for messages, e.g. ``"redis"``
    """

    def __init__(self, raw: Mapping[str, str], context: str = "") -> None:
        self._raw = raw
        self._context = context
        self.problems: list[str] = []

    def lookup(self, key: str, aliases: Iterable[str] = ()) -> tuple[str, str] | None:
        """The first non-empty value among ``key``, ``keyFromEnv`` and the aliases."""
        for name in (key, *aliases):
            for candidate in (name, name + FROM_ENV_SUFFIX):
                value = self._raw.get(candidate)
                if value is not None and value.strip():
                    return candidate, value.strip()
        return None

    def present(self, key: str, aliases: Iterable[str] = ()) -> bool:
        """Whether the key (or its FromEnv form or an alias) has a non-empty value."""
        return self.lookup(key, aliases) is not None

    @overload
    def get(
        self,
        key: str,
        convert: Callable[[str], T],
        *,
        default: T | _Required = ...,
        secret: bool = ...,
        aliases: Iterable[str] = ...,
        choices: Iterable[T] | None = ...,
        check: Callable[[T], str | None] | None = ...,
    ) -> T: ...

    @overload
    def get(
        self,
        key: str,
        convert: Callable[[str], T],
        *,
        default: None,
        secret: bool = ...,
        aliases: Iterable[str] = ...,
        choices: Iterable[T] | None = ...,
        check: Callable[[T], str | None] | None = ...,
    ) -> T | None: ...

    def get(
        self,
        key: str,
        convert: Callable[[str], Any],
        *,
        default: Any = REQUIRED,
        secret: bool = False,
        aliases: Iterable[str] = (),
        choices: Iterable[Any] | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """Read one parameter; on a problem, record it and return the default (or None)."""
        found = self.lookup(key, aliases)
        if found is None:
            if isinstance(default, _Required):
                self.problems.append(f"missing required parameter {key}")
                return None
            return default
        name, raw = found
        shown = "value" if secret else f"{quote(raw)}"
        try:
            value = convert(raw)
        except InvalidValue as err:
            self.problems.append(f"{name}: {shown} {err}")
            return None if isinstance(default, _Required) else default
        allowed = tuple(choices) if choices is not None else None
        if allowed is not None and value not in allowed:
            options = ", ".join(str(c) for c in allowed)
            self.problems.append(f"{name}: {shown} must be one of [{options}]")
            return None if isinstance(default, _Required) else default
        if check is not None and (problem := check(value)) is not None:
            self.problems.append(f"{name}: {shown} {problem}")
            return None if isinstance(default, _Required) else default
        return value

    def problem(self, message: str) -> None:
        """Record a cross-field problem (KEDA's ``Validate()`` rules)."""
        self.problems.append(message)

    def finish(self) -> None:
        """Raise one MetadataError with every problem recorded, if any."""
        if self.problems:
            prefix = f"{self._context}: " if self._context else ""
            raise MetadataError(prefix + p for p in self.problems)
