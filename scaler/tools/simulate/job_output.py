"""What ``simulate`` prints and draws for a ScaledJob: the table, the ``--json`` rows and the
``--plot`` chart, in the style of the ScaledObject timeline of :mod:`.output`.

This module owns the ScaledJob timeline's output formats; every line, row and point comes from
the :class:`~.jobs.JobRow` objects and the jobs of the :class:`~.jobs.JobModel`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any, TextIO

from scaler.tools.simulate.job_spec import CUSTOM, JobSpec
from scaler.tools.simulate.jobs import JobRow
from scaler.tools.simulate.output import format_value

_COUNTS = ("QUEUE", "MAXSCALE", "RUNNING", "PENDING", "CREATED")


class JobTable:
    """The ScaledJob timeline as a text table, one line per poll as it happens."""

    def __init__(self, out: TextIO, keys: Sequence[str]) -> None:
        self._out = out
        self._keys = list(keys)
        self._widths = [max(len(k), 8) for k in self._keys]

    def header(self, title: str) -> None:
        self._out.write(title + "\n")
        cells = ["TIME".rjust(8)]
        cells += [k.ljust(w) for k, w in zip(self._keys, self._widths, strict=True)]
        cells += ["ACTIVE", *(name.ljust(8) for name in _COUNTS), "REASON"]
        self._out.write("  ".join(cells) + "\n")
        self._out.flush()

    def row(self, row: JobRow) -> None:
        cells = [f"{row.time:8.1f}"]
        for key, width in zip(self._keys, self._widths, strict=True):
            cells.append(format_value(row.values.get(key), key in row.values).ljust(width))
        counts = (row.max_scale, row.running, row.pending, row.created)
        cells += [("yes" if row.active else "no").ljust(6)]
        cells.append(format_value(row.queue_length, True).ljust(8))
        cells += [str(count).ljust(8) for count in counts]
        cells.append(row.reason)
        self._out.write("  ".join(cells).rstrip() + "\n")
        self._out.flush()


def job_json_rows(rows: Sequence[JobRow]) -> str:
    """The ``--json`` output: one object per poll."""
    return json.dumps([_row_json(r) for r in rows], indent=2) + "\n"


def _row_json(row: JobRow) -> dict[str, Any]:
    return {
        "time": round(row.time, 3),
        "metrics": dict(row.values),
        "active": row.active,
        "queueLength": row.queue_length,
        "scaleTo": row.scale_to,
        "maxScale": row.max_scale,
        "running": row.running,
        "pending": row.pending,
        "effectiveMaxScale": row.effective,
        "created": row.created,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "reason": row.reason,
    }


def describe_job(
    spec: JobSpec, job_duration: float | None, pending: float, duration: float, speed: float
) -> str:
    """The header line: what is simulated, with which settings."""
    bounds = spec.replicas
    strategy = spec.strategy
    if strategy == CUSTOM:
        strategy += f" (deduction {spec.deduction}, runningJobPercentage {spec.percentage:g})"
    life = "until the queue is drained" if job_duration is None else f"{job_duration:g}s"
    parts = [
        f"jobs {bounds.min}..{bounds.max}",
        f"pollingInterval {spec.polling_interval}s",
        f"scalingStrategy {strategy}",
        f"multipleScalersCalculation {bounds.calculation}",
        f"jobs run {life}" + (f" after {pending:g}s pending" if pending else ""),
    ]
    if spec.active_deadline is not None:
        parts.append(f"activeDeadlineSeconds {spec.active_deadline}")
    return f"{spec.ref}: {', '.join(parts)}; {duration:g}s simulated at {speed:g}x"


def write_job_plot(
    path: str,
    rows: Sequence[JobRow],
    keys: Sequence[str],
    occupancy: Sequence[tuple[float, int]],
    *,
    title: str,
    duration: float,
) -> None:
    """A PNG chart: metric values and the combined queueLength on the left axis; unfinished jobs
    (steps) and the jobs created at each poll (bars) on the right. A bare Figure, no pyplot."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 5.5), layout="constrained")
    values_axis = figure.add_subplot()
    jobs_axis = values_axis.twinx()
    values_axis.set_zorder(jobs_axis.get_zorder() + 1)
    values_axis.patch.set_visible(False)
    highest = 0.0
    series = [(key, [(r.time, r.values.get(key)) for r in rows]) for key in keys]
    if len(keys) > 1:
        series.append(("queueLength", [(r.time, r.queue_length) for r in rows]))
    for label, raw in series:
        points = [(t, v) for t, v in raw if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            highest = max(highest, *ys)
            values_axis.step(xs, ys, where="post", linewidth=1.5, label=label)
    times = [t for t, _ in occupancy] + [duration]
    counts = [c for _, c in occupancy]
    counts.append(counts[-1] if counts else 0)
    jobs_axis.fill_between(times, counts, step="post", color="0.85", label="unfinished jobs")
    jobs_axis.step(times, counts, where="post", color="0.3", linewidth=1)
    width = max(duration / 150, 0.5)
    created = [(r.time, r.created) for r in rows if r.created]
    if created:
        xs, ys = zip(*created, strict=True)
        jobs_axis.bar(xs, ys, width=width, color="tab:red", alpha=0.6, label="jobs created")
    jobs_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    jobs_axis.set_ylim(0, max(counts, default=0) * 1.4 + 1)
    values_axis.set_ylim(0, highest * 1.15 or 1)
    values_axis.set_xlim(0, duration)
    values_axis.set_xlabel("simulated time (s)")
    values_axis.set_ylabel("metric value")
    jobs_axis.set_ylabel("jobs")
    values_axis.set_title("\n".join(textwrap.wrap(title, 150)), fontsize=9)
    handles, labels = values_axis.get_legend_handles_labels()
    more_handles, more_labels = jobs_axis.get_legend_handles_labels()
    values_axis.legend(handles + more_handles, labels + more_labels, loc="upper right", fontsize=8)
    figure.savefig(path, format="png", dpi=100)
