"""``keda-queue-scaler status --address HOST:PORT``: what a running scaler's status page says, as
a table (or ``--json``), so ``kubectl port-forward`` plus one command answers "which
ScaledObjects use this scaler, what does each see, which are broken and why".

It reads ``/status.json`` from the metrics port (the page's own data); nothing else.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Final, TextIO

from scaler.tools.arguments import host_and_port, positive_seconds

#: the metrics port a scaler serves by default (``--metrics-port``)
DEFAULT_ADDRESS: Final = "127.0.0.1:8080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``status`` command's options."""
    parser.add_argument(
        "--address",
        type=host_and_port,
        default=DEFAULT_ADDRESS,
        help=f"HOST:PORT of the scaler's metrics port (default {DEFAULT_ADDRESS}; "
        "kubectl port-forward svc/keda-queue-scaler 8080)",
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for the page (default 5)",
    )


def fetch(address: str, timeout: float) -> dict[str, Any]:
    """The status of the scaler whose metrics port is ``address``."""
    url = f"http://{address}/status.json"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        document: dict[str, Any] = json.load(response)
    return document


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the status; 0 when read (whatever it says), 2 when the scaler cannot be read."""
    try:
        status = fetch(args.address, args.timeout)
    except (OSError, urllib.error.URLError, ValueError) as error:
        reason = getattr(error, "reason", error)
        err.write(
            f"keda-queue-scaler status: cannot read http://{args.address}/status.json: {reason}\n"
        )
        return 2
    if args.json:
        out.write(json.dumps(status, indent=2) + "\n")
        return 0
    out.write(render(status))
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() else f"{value:.3g}"
    return str(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]
    line = "  ".join
    lines = [line(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += [line(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _error(error: dict[str, Any] | None) -> str:
    if error is None:
        return "-"
    return f"{error['code']} {error['age_seconds']:.0f}s ago: {error['message']}"


def render(status: dict[str, Any]) -> str:
    """The status as two tables: triggers (broken first) and resources."""
    triggers = [
        [
            "BROKEN" if t["broken"] else "ok",
            f"{t['namespace']}/{t['name']}",
            t["backend"],
            t["resource"] or "-",
            t["metric_name"] or "-",
            _cell(t["value"]),
            _cell(t["target"]),
            _cell(t["active"]),
            f"{t['last_rpc_age_seconds']:.0f}s",
            _error(t["error"]),
        ]
        for t in status["triggers"]
    ]
    resources = [
        [
            r["backend"],
            r["resource"],
            _cell(r["value"]),
            "-" if r["measured_age_seconds"] is None else f"{r['measured_age_seconds']:.0f}s",
            str(r["readers"]),
            str(r["open_streams"]),
            str(r["consecutive_errors"]),
            _cell(r["oldest_age_seconds"]),
            _cell(r["in_flight"]),
            _error(r["error"]),
        ]
        for r in status["resources"]
    ]
    lines = [f"TRIGGERS ({len(triggers)}, {sum(t['broken'] for t in status['triggers'])} broken)"]
    head = (
        "STATE",
        "SCALEDOBJECT",
        "BACKEND",
        "RESOURCE",
        "METRIC",
        "VALUE",
        "TARGET",
        "ACTIVE",
        "LAST RPC",
        "LAST ERROR",
    )
    lines += _table(head, triggers) if triggers else ["(none called in the last hour)"]
    if status["triggers_left_out"]:
        lines.append(f"... {status['triggers_left_out']} more left out")
    lines += ["", f"RESOURCES ({len(resources)})"]
    head = (
        "BACKEND",
        "RESOURCE",
        "VALUE",
        "MEASURED",
        "READERS",
        "STREAMS",
        "ERRORS",
        "OLDEST AGE",
        "IN FLIGHT",
        "LAST ERROR",
    )
    lines += _table(head, resources) if resources else ["(none)"]
    if status["resources_left_out"]:
        lines.append(f"... {status['resources_left_out']} more left out")
    return "\n".join(lines) + "\n"
