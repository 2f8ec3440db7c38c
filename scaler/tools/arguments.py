"""The ``argparse`` value types of the tools' options, with messages that quote the bad value.

This module owns turning an option's text into a number (or an address) and refusing what the
option cannot take; ``check``, ``simulate``, ``status`` and ``migrate`` pass these functions as
``type=``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

_Number = TypeVar("_Number", int, float)


def positive_seconds(text: str) -> float:
    """A finite number of seconds greater than 0."""
    return _parse(
        text, float, "a number of seconds", _positive, "a number of seconds greater than 0"
    )


def positive_number(text: str) -> float:
    """A finite number greater than 0."""
    return _parse(text, float, "a number", _positive, "greater than 0")


def non_negative_number(text: str) -> float:
    """A finite number, 0 or more."""
    return _parse(text, float, "a number", _finite_non_negative, "0 or more")


def non_negative_integer(text: str) -> int:
    """An integer, 0 or more."""
    return _parse(text, int, "an integer", _non_negative, "0 or more")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _non_negative(value: int) -> bool:
    # no isfinite here: an integer too large for a float would raise instead of being refused
    return value >= 0


def _parse(
    text: str,
    convert: Callable[[str], _Number],
    kind: str,
    accepted: Callable[[_Number], bool],
    rule: str,
) -> _Number:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not accepted(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
    return value


def host_and_port(text: str) -> str:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6), a port from 1 to 65535; returned as given."""
    host, colon, port = text.rpartition(":")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    unbracketed = ":" in bare and bare == host
    if not colon or not bare or unbracketed or any(c.isspace() for c in text) or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    if not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be from 1 to 65535")
    return text
