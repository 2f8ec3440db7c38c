"""``keda-queue-scaler migrate MANIFEST``: KEDA's built-in triggers rewritten for the scaler.

This module owns the ``migrate`` subcommand: its arguments, reading the manifest, running the
rewrite over every document, checking that the result still reads as a manifest, and writing
the manifest, the profile stub and the report. What a trigger becomes is
:mod:`.migrate_rewrite`'s (its per-trigger rules :mod:`.migrate_rules`'); TriggerAuthentications
are :mod:`.migrate_auth`'s; the text is :mod:`.migrate_yaml`'s (ruamel.yaml round-trip:
comments, key order and quotes kept, documents without a built-in trigger written back byte for
byte); the report and the stub are :mod:`.migrate_report`'s.

What is rewritten
    The ``redis``, ``redis-cluster``, ``redis-sentinel``, ``redis-streams``,
    ``redis-cluster-streams``, ``redis-sentinel-streams``, ``kafka`` and ``rabbitmq`` triggers
    of every ScaledObject and ScaledJob (``kind: List`` items too), into ``external`` triggers
    (``external-push`` with ``--push``). Other triggers and documents stay as they are.

Output
    The manifest to stdout, ``--output FILE`` or back into MANIFEST (``--in-place``); the
    report to stderr (``--report json`` for JSON); the profiles stub to ``--profiles-out``.

Exit status: 0 when every built-in trigger was converted; 1 when one needs a human (it is left
as it was and the report says why; the rest is still written), or a profile is needed and no
``--profiles-out`` was given; 2 when the manifest cannot be read or holds no valid
ScaledObject/ScaledJob, or the options are unusable.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Final, TextIO

from scaler.errors import ManifestError
from scaler.tools.arguments import host_and_port
from scaler.tools.manifest import load_manifest
from scaler.tools.migrate_auth import Inventory
from scaler.tools.migrate_report import Report, stub_text, write_json, write_text
from scaler.tools.migrate_rewrite import (
    DEFAULT_SCALER_ADDRESS,
    Options,
    Rewriter,
    is_scaled,
    objects,
)
from scaler.tools.migrate_yaml import Document, render, split

EXIT_OK: Final = 0
EXIT_NEEDS_HUMAN: Final = 1
EXIT_BAD_INPUT: Final = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``MANIFEST`` and the options of the ``migrate`` subcommand to its parser."""
    parser.add_argument(
        "file",
        metavar="MANIFEST",
        help="ScaledObject/ScaledJob manifest, multi-document YAML allowed ('-' reads stdin), "
        "with the TriggerAuthentications the triggers name",
    )
    parser.add_argument(
        "--scaler-address",
        metavar="HOST:PORT",
        type=host_and_port,
        default=DEFAULT_SCALER_ADDRESS,
        help=f"the triggers' scalerAddress (default {DEFAULT_SCALER_ADDRESS})",
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="write external-push triggers (activation pushed by StreamIsActive) "
        "instead of external",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--output", "-o", metavar="FILE", help="write the manifest to FILE instead of stdout"
    )
    output.add_argument(
        "--in-place", action="store_true", help="write the manifest back into MANIFEST"
    )
    parser.add_argument(
        "--profiles-out",
        metavar="FILE",
        help="write the stub of the connection-profiles file the converted "
        "TriggerAuthentications need (Secret keys as placeholders, never values)",
    )
    parser.add_argument(
        "--report",
        choices=("text", "json"),
        default="text",
        help="how the report on stderr is written (default text)",
    )


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Migrate ``args.file``; the manifest to ``stdout`` or a file, the report to ``stderr``.

    :returns: 0 if every built-in trigger converted, 1 if one needs a human, 2 if unusable
    """
    if args.in_place and args.file == "-":
        stderr.write("migrate: --in-place needs a file, not '-' (stdin)\n")
        return EXIT_BAD_INPUT
    if args.profiles_out and Path(args.profiles_out).exists():
        stderr.write(
            f"migrate: {args.profiles_out} exists: migrate never overwrites a profiles file (it "
            "may hold filled-in credentials); remove it or name another\n"
        )
        return EXIT_BAD_INPUT
    try:
        text = _read(args.file, stdin)
        load_manifest(text)  # the model check and simulate read: every problem, or exit 2
        documents = split(text)
    except ManifestError as err:
        for problem in err.problems:
            stderr.write(f"migrate: {args.file}: {problem}\n")
        return EXIT_BAD_INPUT

    options = Options(args.scaler_address, args.push)
    report = migrate(documents, options)
    output = "".join(render(document) for document in documents)
    try:
        load_manifest(output)
    except ManifestError as err:  # a bug of ours: never write a manifest that does not read
        for problem in err.problems:
            stderr.write(f"migrate: internal error, the rewritten manifest is invalid: {problem}\n")
        return EXIT_BAD_INPUT

    try:
        if report.profiles and args.profiles_out:
            _write(args.profiles_out, stub_text(report.profiles), private=True)
            report.profiles_file = args.profiles_out
        if args.in_place:
            _write(args.file, output)
        elif args.output:
            _write(args.output, output)
        else:
            stdout.write(output)
    except OSError as err:
        stderr.write(f"migrate: cannot write {err.filename}: {err.strerror}\n")
        return EXIT_BAD_INPUT
    _conclude(report, args.profiles_out)
    if args.report == "json":
        write_json(report, stderr)
    else:
        write_text(report, stderr)
    return EXIT_NEEDS_HUMAN if report.needs_human else EXIT_OK


def migrate(documents: list[Document], options: Options) -> Report:
    """Rewrite the built-in triggers of every document in place (marking what changed)."""
    numbered = [(n, d) for n, d in enumerate((d for d in documents if d.data is not None), 1)]
    inventory = Inventory.of(obj for _, d in numbered for obj in objects(d.data))
    rewriter = Rewriter(options, inventory)
    scaled = [(n, d, obj) for n, d in numbered for obj in objects(d.data) if is_scaled(obj)]
    rewriter.share([obj for _, _, obj in scaled])
    report = Report()
    for number, document, obj in scaled:
        findings, changed = rewriter.scaled(number, obj)
        report.findings.extend(findings)
        document.changed = document.changed or changed
    report.profiles = list(rewriter.profiles.values())
    return report


def _conclude(report: Report, profiles_out: str | None) -> None:
    if report.profiles and not profiles_out:
        names = ", ".join(p.name for p in report.profiles)
        report.problems.append(
            f"the converted triggers name connection profile(s) {names}: rerun with "
            "--profiles-out FILE for the stub, fill it in, and serve with --profiles FILE"
        )
    elif report.profiles:
        report.notes.append(
            f"fill in the placeholders of {profiles_out}, keep it in a Secret mounted into the "
            f"scaler and serve with --profiles (docs/security.md#connection-profiles)"
        )
    elif profiles_out:
        report.notes.append(f"no connection profile was needed: {profiles_out} not written")


def _read(path: str, stdin: TextIO) -> str:
    if path == "-":
        return stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError([f"cannot read {path}: not UTF-8 text"]) from None
    except OSError as err:
        raise ManifestError([f"cannot read {path}: {err.strerror}"]) from None


def _write(path: str, text: str, private: bool = False) -> None:
    """Replace ``path`` whole, so that a reader never sees half of it. A file replaced keeps
    its mode; a new one gets the umask's, or only its owner's when ``private``."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        elif not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
