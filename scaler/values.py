"""What a metadata value may be, and how a user's value is shown back in an error.

Converters turn one trimmed string into a typed value or raise :class:`InvalidValue`, whose
message completes ``"<key>: '<value>' ..."``. Checks take a converted value and return a problem
or None. :func:`quote` shows a user's value in a message: masked, bounded, on one line.

KEDA's rules where they exist: booleans are Go's ``strconv.ParseBool``, durations Go's
``time.ParseDuration`` or bare milliseconds. Standard library only; nothing here knows a backend.
"""

from __future__ import annotations

import math
import re
from typing import Final
from urllib.parse import urlsplit

#: longest value quoted back in an error message
_MAX_QUOTED: Final = 80

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_CREDENTIALS: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")
_HOST: Final = re.compile(r"[A-Za-z0-9._%-]+|\[[0-9A-Fa-f:.%]+\]|[0-9A-Fa-f:]+")
# Go's time.ParseDuration units, for `timeout: 2s`
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
    try:
        return int(text)
    except ValueError:  # Python refuses to convert more than 4,300 digits
        raise InvalidValue("is not a valid integer (too many digits)") from None


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


def lower(text: str) -> str:
    """Any non-empty string, lower-cased (KEDA compares some enumerations that way)."""
    return text.lower()


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


def duration_seconds(text: str) -> float:
    """Integer milliseconds (KEDA's form) or a Go duration such as ``2s``; > 0."""
    if _INTEGER.fullmatch(text):
        seconds = integer(text) / 1000
    else:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise InvalidValue("is not a duration (milliseconds, or e.g. 500ms, 2s)")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if not seconds > 0 or not math.isfinite(seconds):
        raise InvalidValue("must be greater than 0")
    return seconds


def pem(text: str) -> str:
    """PEM material (certificates, keys): it must at least look like PEM."""
    if "-----BEGIN " not in text:
        raise InvalidValue("is not PEM (-----BEGIN ...-----)")
    return text


def positive(value: float) -> str | None:
    """A check: the value must be > 0."""
    return None if value > 0 else "must be greater than 0"


def non_negative(value: float) -> str | None:
    """A check: the value must be >= 0."""
    return None if value >= 0 else "must be 0 or greater"


def at_least_one(value: float) -> str | None:
    """A check: the value must be >= 1."""
    return None if value >= 1 else "must be 1 or greater"


def tcp_port(value: int) -> str | None:
    """A check: a TCP port number."""
    return None if 0 < value < 65536 else "is not a TCP port (1-65535)"


def host_port(value: str) -> tuple[str, int] | None:
    """``host:port`` (``[v6]:port``) as (host, port), or None if it is anything else."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or len(port) > 5:
        return None
    if not 0 < int(port) < 65536:
        return None
    if not _HOST.fullmatch(host):
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
