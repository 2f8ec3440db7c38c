"""The scenarios of the KEDA load benchmark, one module each, by their ``--scenarios`` names.

A scenario is a coroutine function taking the run's :class:`~bench.keda_load.workbench.Workbench`
and returning its figures (a JSON-ready dict); it raises when it cannot measure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.keda_load.scenarios.activation import activation
from bench.keda_load.scenarios.poll import poll
from bench.keda_load.scenarios.streams import streams
from bench.keda_load.scenarios.throughput import throughput
from bench.keda_load.workbench import Workbench

Scenario = Callable[[Workbench], Awaitable[dict[str, Any]]]

#: every scenario, in the order a full run measures them
SCENARIOS: dict[str, Scenario] = {
    "poll": poll,
    "throughput": throughput,
    "streams": streams,
    "activation": activation,
}
