"""Bad metadata, told to the user once: which ScaledObject sent it, and why it was refused.

KEDA's operator logs only "got empty metric spec" when GetMetricSpec fails (the scaler's
INVALID_ARGUMENT text reaches the operator's log, if anyone looks). So the scaler says it
itself: each distinct metadata error is logged once per ScaledObject, at WARNING, with the
namespace/name and every bad key (the error's problems name them), and counted by backend and
reason. KEDA repeats the same bad call on every poll and HPA sync; remembering what was told
keeps the log readable, and a bounded memory keeps a flood of distinct errors harmless.

The message is the error's own text, which never quotes a secret (``scaler.metadata``).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Final

from scaler.errors import MetadataError
from scaler.metadata import BACKEND_KEY
from scaler.profiles import CONNECTION_KEY

log = logging.getLogger("scaler.refusals")

#: distinct (ScaledObject, error) pairs remembered; beyond, the oldest are told again if seen
_REMEMBERED: Final = 10_000
_CONFLICTS: Final = ("applies only with", "cannot both", "needs ", "must differ", "cannot be")
#: a problem about one key's value starts with the key (``listLength: '0' must be > 0``)
_VALUE_PROBLEM: Final = re.compile(r"^[A-Za-z][\w.]*: ")
#: the reasons a problem can have (the metric's label values)
REASONS: Final = ("backend", "profile", "missing", "size", "metric_name", "invalid", "conflict")


def reason(problem: str, backends: Collection[str] = ()) -> str:
    """What kind of problem one of a MetadataError's problems is: a bounded label value.

    :param backends: the backend names a problem may start with (its parser's context)
    """
    text = problem
    for name in backends:
        if problem.startswith(f"{name}: "):
            text = problem.removeprefix(f"{name}: ")
            break
    if text.startswith((f"{BACKEND_KEY}:", f"missing required parameter {BACKEND_KEY}")):
        return "backend"
    if text.startswith((f"{CONNECTION_KEY}:", f"missing required parameter {CONNECTION_KEY}")):
        return "profile"
    if text.startswith("missing required parameter"):
        return "missing"
    if text.startswith("scalerMetadata "):
        return "size"
    if text.startswith("metricName:"):
        return "metric_name"
    if _VALUE_PROBLEM.match(text):
        return "invalid"
    return "conflict" if any(marker in text for marker in _CONFLICTS) else "invalid"


class Refusals:
    """Remembers which metadata errors each ScaledObject was already told about.

    :param backends: the known backend names; any other name is counted as ``unknown`` (a
        label value never comes from metadata unchecked)
    :param on_reason: called once per problem of a newly told error with (backend, reason):
        the metric
    """

    def __init__(
        self, backends: Collection[str], on_reason: Callable[[str, str], None] | None = None
    ) -> None:
        self._backends = frozenset(backends)
        self._on_reason = on_reason
        self._told: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def refused(self, namespace: str, name: str, backend: str, error: MetadataError) -> bool:
        """Tell about a refusal unless this ScaledObject was told about this error already;
        whether it was told now."""
        key = (namespace, name, str(error))
        if key in self._told:
            self._told.move_to_end(key)
            return False
        self._told[key] = None
        if len(self._told) > _REMEMBERED:
            self._told.popitem(last=False)
        shown = backend if backend in self._backends else "unknown"
        log.warning(
            "bad metadata from ScaledObject %s/%s (backend %s): %s",
            namespace,
            name,
            shown,
            "; ".join(error.problems),
            extra={"scaled_object": f"{namespace}/{name}", "backend": shown},
        )
        if self._on_reason is not None:
            for problem in error.problems:
                self._on_reason(shown, reason(problem, self._backends))
        return True
