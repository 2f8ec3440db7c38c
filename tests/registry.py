"""The registry the tests serve: every built-in backend, plus the toy one (one line)."""

from __future__ import annotations

from typing import Final

from scaler.backends import BACKENDS as BUILT_IN
from scaler.backends.base import AnyBackend
from tests.toy_backend import SpoolBackend

BACKENDS: Final[tuple[type[AnyBackend], ...]] = (*BUILT_IN, SpoolBackend)
