"""The ``argparse`` value types of the tools' options, with messages that quote the bad value.

This module owns turning an option's text into a number and refusing what the option cannot
take; ``check``, ``simulate`` and ``status`` pass these functions as ``type=``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from scaler.values import host_port

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


def address(text: str) -> str:
    """``HOST:PORT`` (``[v6]:port``), as given, or an error quoting it."""
    if host_port(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text.strip()


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
