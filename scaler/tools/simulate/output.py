"""What ``simulate`` prints and draws: the table, the ``--json`` rows and the ``--plot`` chart.

This module owns the timeline's output formats; every line, row and point comes from the
:class:`~.model.Row` objects the model returned.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from typing import Any, TextIO

from scaler.tools.simulate.hpa import HpaSettings
from scaler.tools.simulate.model import Row
from scaler.tools.simulate.spec import HpaMetric, ObjectSpec


class Table:
    """The timeline as a text table, one line per row as it happens."""

    def __init__(self, out: TextIO, keys: Sequence[str]) -> None:
        self._out = out
        self._keys = list(keys)
        self._widths = [max(len(k), 8) for k in self._keys]

    def header(self, title: str) -> None:
        self._out.write(title + "\n")
        cells = ["TIME".rjust(8), "EVENT"]
        cells += [k.ljust(w) for k, w in zip(self._keys, self._widths, strict=True)]
        cells += ["ACTIVE", "REPLICAS", "REASON"]
        self._out.write("  ".join(cells) + "\n")
        self._out.flush()

    def row(self, row: Row) -> None:
        cells = [f"{row.time:8.1f}", row.event.ljust(5)]
        for key, width in zip(self._keys, self._widths, strict=True):
            cells.append(format_value(row.values.get(key), key in row.values).ljust(width))
        active = "-" if row.active is None else ("yes" if row.active else "no")
        cells += [active.ljust(6), str(row.replicas).ljust(8), row.reason]
        self._out.write("  ".join(cells).rstrip() + "\n")
        self._out.flush()


def format_value(value: float | None, present: bool) -> str:
    """A metric value as a table cell: ``-`` when nothing was read, ``error`` when it failed."""
    if not present:
        return "-"
    if value is None:
        return "error"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def json_rows(rows: Sequence[Row]) -> str:
    """The ``--json`` output: one object per row."""
    return json.dumps([_row_json(r) for r in rows], indent=2) + "\n"


def _row_json(row: Row) -> dict[str, Any]:
    return {
        "time": round(row.time, 3),
        "event": row.event,
        "metrics": dict(row.values),
        "active": row.active,
        "replicasBefore": row.before,
        "replicas": row.replicas,
        "reason": row.reason,
    }


def describe(spec: ObjectSpec, settings: HpaSettings, duration: float, speed: float) -> str:
    """The header line: what is simulated, with which settings."""
    bounds = spec.replicas
    parts = [f"replicas {bounds.min}..{bounds.max}"]
    if bounds.idle is not None:
        parts.append(f"idle {bounds.idle}")
    parts += [
        f"pollingInterval {spec.polling_interval}s",
        f"cooldownPeriod {spec.cooldown_period}s",
        f"HPA every {settings.sync_period:g}s "
        + ("(default scaling rules)" if spec.behavior is None else "(behavior)"),
    ]
    if spec.fallback is not None:
        parts.append(
            f"fallback {spec.fallback.replicas} after {spec.fallback.failure_threshold} failures"
        )
    return f"{spec.ref}: {', '.join(parts)}; {duration:g}s simulated at {speed:g}x"


def plot_available() -> bool:
    """Whether ``--plot`` can work (matplotlib is the optional extra ``plot``)."""
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(
    path: str,
    rows: Sequence[Row],
    metrics: Sequence[HpaMetric],
    *,
    title: str,
    duration: float,
    initial: int,
) -> None:
    """A PNG chart: metric values (and targets) on the left axis, replicas on the right, as
    steps. Uses a bare Figure (the Agg canvas), never pyplot's global state."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 5.5), layout="constrained")
    values_axis = figure.add_subplot()
    replicas_axis = values_axis.twinx()
    # values drawn over the replicas: the twin axis would otherwise hide them
    values_axis.set_zorder(replicas_axis.get_zorder() + 1)
    values_axis.patch.set_visible(False)
    highest = 0.0
    for metric in metrics:
        points = [
            (row.time, value) for row in rows if (value := row.values.get(metric.key)) is not None
        ]
        target = metric.target / 1000
        highest = max(highest, target, *(value for _, value in points))
        if points:
            xs, ys = zip(*points, strict=True)
            line = values_axis.step(xs, ys, where="post", linewidth=1.5, label=metric.key)[0]
            values_axis.axhline(
                target,
                color=line.get_color(),
                linestyle=":",
                linewidth=1,
                label=f"{metric.key} target",
            )
    times = [0.0, *(row.time for row in rows), duration]
    counts = [initial, *(row.replicas for row in rows)]
    counts.append(counts[-1])
    replicas_axis.fill_between(times, counts, step="post", color="0.85", label="replicas")
    replicas_axis.step(times, counts, where="post", color="0.3", linewidth=1)
    replicas_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    # different headroom on the two axes, so equal heights do not mean equal numbers
    replicas_axis.set_ylim(0, max(counts) * 1.4 + 1)
    values_axis.set_ylim(0, highest * 1.15 or 1)
    values_axis.set_xlim(0, duration)
    values_axis.set_xlabel("simulated time (s)")
    values_axis.set_ylabel("metric value")
    replicas_axis.set_ylabel("replicas")
    values_axis.set_title(title, fontsize=9)
    handles, labels = values_axis.get_legend_handles_labels()
    more_handles, more_labels = replicas_axis.get_legend_handles_labels()
    values_axis.legend(handles + more_handles, labels + more_labels, loc="upper right", fontsize=8)
    figure.savefig(path, format="png", dpi=100)
