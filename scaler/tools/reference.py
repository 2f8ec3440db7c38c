"""The generated reference tables of ``docs/``: rendered from the code, never written by hand.

* each built-in backend's parameter table, in ``docs/backends/<name>.md``, from its declared
  parameters (``scaler.metadata.param``);
* the keys a connection profile supplies, per backend, in ``docs/security.md``;
* the process settings, in ``docs/operations.md``, from :class:`~scaler.settings.Settings`,
  and each backend's own watch interval beside them.

A table sits between ``<!-- BEGIN GENERATED <block> (make docs) -->`` and
``<!-- END GENERATED <block> -->``; everything around it is prose. ``make docs``
(``python -m scaler.tools.reference``) rewrites the tables in place; ``--check`` fails on drift,
and so does the docs test.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Final

from scaler.backends import BACKENDS
from scaler.backends.base import AnyBackend
from scaler.metadata import BACKEND_KEY, Param, declared
from scaler.settings import Settings, env_name

ROOT: Final = Path(__file__).resolve().parents[2]


def begin_mark(block: str) -> str:
    return f"<!-- BEGIN GENERATED {block} (make docs) -->"


def end_mark(block: str) -> str:
    return f"<!-- END GENERATED {block} -->"


def _code(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def shown_default(p: Param[Any]) -> str:
    """A parameter's default as the docs say it."""
    if p.shown_default is not None:
        return p.shown_default
    if p.required:
        return "required"
    if p.default is None:
        return "-"
    return _code(p.default)


def _meaning(p: Param[Any]) -> str:
    parts = [p.doc.rstrip(".")] if p.doc else []
    if p.choices:
        parts.append("one of " + ", ".join(_code(c) for c in p.choices))
    if p.secret:
        parts.append("never logged, returned in an error or shown in `repr`")
    return "; ".join(parts)


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def parameter_table(backend: type[AnyBackend]) -> str:
    """The metadata reference of one backend: every declared key, its default and meaning."""
    rows = [
        _row("Key", "Default", "Meaning"),
        "|---|---|---|",
        _row(f"`{BACKEND_KEY}`", "required", f"`{backend.name}`"),
    ]
    for _, p in declared(backend.params):
        key = f"`{p.key}`"
        if p.aliases:
            key += " (alias " + ", ".join(f"`{a}`" for a in p.aliases) + ")"
        rows.append(_row(key, shown_default(p), _meaning(p)))
    return "\n".join(rows)


def connection_keys_table(backends: Iterable[type[AnyBackend]]) -> str:
    """What a connection profile of each backend may (and metadata beside it may not) set."""
    rows = [_row("Backend", "Keys a profile supplies"), "|---|---|"]
    for backend in backends:
        keys = ", ".join(f"`{k}`" for k in sorted(backend.connection_keys(), key=str.lower))
        rows.append(_row(f"`{backend.name}`", keys))
    return "\n".join(rows)


def watch_intervals_table(backends: Iterable[type[AnyBackend]]) -> str:
    """Each backend's default watch interval (``--watch-intervals`` overrides it)."""
    rows = [_row("Backend", "Watch interval"), "|---|---|"]
    for backend in backends:
        interval = backend.watch_interval
        shown = f"{interval * 1000:g} ms" if interval is not None else "`--watch-interval`"
        rows.append(_row(f"`{backend.name}`", shown))
    return "\n".join(rows)


def settings_table() -> str:
    """Every process setting: its flag, environment variable, default and meaning."""
    rows = [_row("Flag", "Environment", "Default", "Meaning"), "|---|---|---|---|"]
    for f in fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            shown = ",".join(f"{k}={v:g}" for k, v in default) or "none"
            default_cell = f"`{shown}`" if default else "none"
        elif default == "":
            default_cell = "none"
        else:
            default_cell = _code(default)
        flag = "--" + f.name.replace("_", "-")
        rows.append(_row(f"`{flag}`", f"`{env_name(f.name)}`", default_cell, f.metadata["help"]))
    return "\n".join(rows)


def generated(backends: Sequence[type[AnyBackend]] = BACKENDS) -> dict[Path, dict[str, str]]:
    """Every generated block, by page and block name."""
    pages: dict[Path, dict[str, str]] = {
        Path("docs", "backends", f"{b.name}.md"): {f"parameters:{b.name}": parameter_table(b)}
        for b in backends
    }
    pages[Path("docs", "security.md")] = {"connection-keys": connection_keys_table(backends)}
    pages[Path("docs", "operations.md")] = {
        "settings": settings_table(),
        "watch-intervals": watch_intervals_table(backends),
    }
    return pages


def fill(text: str, blocks: Mapping[str, str], where: str) -> str:
    """``text`` with each block's table between its marks.

    :raises ValueError: a block's marks are missing or out of order
    """
    for block, table in blocks.items():
        begin, end = begin_mark(block), end_mark(block)
        start = text.find(begin)
        stop = text.find(end, start + 1)
        if start < 0 or stop < 0:
            raise ValueError(f"{where}: no {begin!r} ... {end!r} pair")
        text = text[: start + len(begin)] + "\n" + table + "\n" + text[stop:]
    return text


def stale(root: Path = ROOT) -> list[str]:
    """Pages whose generated tables differ from the code (empty when the docs are current)."""
    out = []
    for page, blocks in generated().items():
        text = (root / page).read_text(encoding="utf-8")
        if fill(text, blocks, str(page)) != text:
            out.append(str(page))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scaler.tools.reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if a table is out of date")
    args = parser.parse_args(argv)
    if args.check:
        drifted = stale()
        for name in drifted:
            sys.stderr.write(f"docs drift: {name} differs from the code; run 'make docs'\n")
        return 1 if drifted else 0
    for page, blocks in generated().items():
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        path.write_text(fill(text, blocks, str(page)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
