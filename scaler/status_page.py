"""The status page on the metrics port: ``/status`` (HTML) and ``/status.json``, as a WSGI app
beside ``/metrics``.

The page is rendered on the server from :meth:`scaler.status.StatusBoard.snapshot`: plain tables
that read in a terminal browser, no script, a small inline SVG sparkline per resource. Every
value shown is escaped; none is raw metadata.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from scaler.status import StatusBoard

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_STYLE: Final = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;"
    "max-width:28em;overflow-wrap:anywhere}"
    "tr.broken td{background:#fde2e2}th{background:#eee;white-space:nowrap}"
)
_TRIGGER_COLUMNS: Final = (
    "Namespace",
    "Name",
    "Backend",
    "Resource",
    "Metric",
    "Value",
    "Target",
    "Active",
    "Last RPC",
    "RPCs",
    "Streams",
    "Last error",
)
_RESOURCE_COLUMNS: Final = (
    "Backend",
    "Resource",
    "Value",
    "Measured",
    "Readers",
    "Streams",
    "Errors in a row",
    "Oldest age",
    "In flight",
    "Last 15 min",
    "Last error",
)


def status_app(board: StatusBoard, metrics: WSGIApp) -> WSGIApp:
    """``/status`` and ``/status.json`` from the board; every other path to ``metrics``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/status", "/status/"):
            body, kind = render(board.snapshot()).encode(), "text/html; charset=utf-8"
        elif path == "/status.json":
            body, kind = json.dumps(board.snapshot()).encode(), "application/json"
        else:
            return metrics(environ, start_response)
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return app


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _error(error: dict[str, Any] | None) -> str:
    if error is None:
        return ""
    return f"<b>{html.escape(error['code'])}</b> {_ago(error['age_seconds'])}: " + html.escape(
        error["message"]
    )


def sparkline(points: list[list[float]], width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of (seconds before now, value) points over the last 15 minutes."""
    if len(points) < 2:
        return ""
    values = [value for _, value in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    coordinates = " ".join(
        f"{width * (900 + at) / 900:.1f},{height - 2 - (height - 4) * (value - low) / span:.1f}"
        for at, value in points
    )
    label = html.escape(f"from {_number(values[0])} to {_number(values[-1])}")
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="{label}">'
        f'<polyline fill="none" stroke="#36c" stroke-width="1.5" points="{coordinates}"/></svg>'
    )


def _row(cells: Iterable[str], broken: bool = False) -> str:
    cls = ' class="broken"' if broken else ""
    return f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _head(columns: Iterable[str]) -> str:
    return "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"


def render(snapshot: dict[str, Any]) -> str:
    """The HTML page of a snapshot."""
    esc = html.escape
    triggers = [
        _row(
            (
                esc(t["namespace"]),
                esc(t["name"]),
                esc(t["backend"]),
                esc(t["resource"]),
                esc(t["metric_name"]),
                _number(t["value"]),
                _number(t["target"]),
                "" if t["active"] is None else ("yes" if t["active"] else "no"),
                _ago(t["last_rpc_age_seconds"]),
                esc(", ".join(f"{m} {n}" for m, n in t["calls"].items())),
                str(t["open_streams"]),
                _error(t["error"]),
            ),
            t["broken"],
        )
        for t in snapshot["triggers"]
    ]
    resources = [
        _row(
            (
                esc(r["backend"]),
                esc(r["resource"]),
                _number(r["value"]),
                _ago(r["measured_age_seconds"]),
                str(r["readers"]),
                str(r["open_streams"]),
                str(r["consecutive_errors"]),
                _number(r["oldest_age_seconds"]),
                _number(r["in_flight"]),
                sparkline(r["history"]),
                _error(r["error"]),
            ),
            r["consecutive_errors"] > 0,
        )
        for r in snapshot["resources"]
    ]
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snapshot["generated_at"]))
    broken = sum(1 for t in snapshot["triggers"] if t["broken"])
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">',
        "<title>keda-queue-scaler status</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>keda-queue-scaler status</h1>",
        f"<p>{len(snapshot['triggers'])} triggers ({broken} broken), "
        f"{len(snapshot['resources'])} resources; generated {generated}. "
        "Triggers that called in the last hour; broken first.</p>",
        '<h2>Triggers</h2><table id="triggers">',
        _head(_TRIGGER_COLUMNS),
        *triggers,
        "</table>",
        _left_out(snapshot["triggers_left_out"], "triggers"),
        '<h2>Resources</h2><table id="resources">',
        _head(_RESOURCE_COLUMNS),
        *resources,
        "</table>",
        _left_out(snapshot["resources_left_out"], "resources"),
        '<p><a href="/status.json">status.json</a> · <a href="/metrics">metrics</a></p>',
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part)


def _left_out(count: int, what: str) -> str:
    return f"<p>{count} more {what} left out.</p>" if count else ""
