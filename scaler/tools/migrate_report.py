"""What ``migrate`` did, and how it is shown: per-trigger findings, the report, the profile stub.

A :class:`Finding` is one trigger's outcome (converted, untouched, or needing a human, with
every change, warning and reason); :func:`write_text` and :func:`as_json` show the findings;
:func:`stub_text` writes the connection-profiles stub (``scaler.profiles``' format).

No value of the manifest is ever shown here: findings name keys, Secrets and environment
variables, never what they hold. The stub is the only output that holds values, and only those
the trigger's metadata already carried in plain text (an address, a user): each key a Secret
held is a commented placeholder naming that Secret and key, since a profile takes literal values
only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import yaml

CONVERTED: Final = "converted"
UNTOUCHED: Final = "untouched"
NEEDS_HUMAN: Final = "needs-human"

#: the keys whose values are PEM text, which a profile holds as a block scalar
_PEM_KEYS: Final = frozenset({"ca", "cert", "key"})


@dataclass
class Finding:
    """One trigger of one ScaledObject/ScaledJob.

    :param document: 1-based position of its YAML document in the file
    :param status: :data:`CONVERTED`, :data:`UNTOUCHED` or :data:`NEEDS_HUMAN` (the trigger is
        then left exactly as it was)
    """

    document: int
    object: str
    trigger: int
    type: str
    status: str = UNTOUCHED
    new_type: str | None = None
    backend: str | None = None
    connection: str | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "object": self.object,
            "trigger": self.trigger,
            "type": self.type,
            "status": self.status,
            "newType": self.new_type,
            "backend": self.backend,
            "connection": self.connection,
            "changes": list(self.changes),
            "warnings": list(self.warnings),
            "problems": list(self.problems),
            "reason": self.reason or None,
        }


@dataclass
class Placeholder:
    """A profile key whose value a Secret holds: what to fill in, never the value."""

    key: str
    secret: str
    secret_key: str
    note: str = ""


@dataclass
class ProfileStub:
    """A connection profile ``migrate`` needs: the literal keys it moved out of the triggers'
    metadata, and a placeholder per key the TriggerAuthentication took from a Secret."""

    name: str
    backend: str
    authentication: str
    values: dict[str, str] = field(default_factory=dict)
    placeholders: list[Placeholder] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "authentication": self.authentication,
            "keys": sorted(self.values),
            "placeholders": [
                {"key": p.key, "secret": p.secret, "secretKey": p.secret_key}
                for p in self.placeholders
            ],
            "usedBy": list(self.used_by),
        }


@dataclass
class Report:
    """Everything ``migrate`` tells: the findings, the profiles, and run-level notes."""

    findings: list[Finding] = field(default_factory=list)
    profiles: list[ProfileStub] = field(default_factory=list)
    profiles_file: str | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def needs_human(self) -> bool:
        return bool(self.problems) or any(f.status == NEEDS_HUMAN for f in self.findings)

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)

    def as_json(self) -> dict[str, Any]:
        return {
            "triggers": [f.as_json() for f in self.findings],
            "profiles": [p.as_json() for p in self.profiles],
            "profilesFile": self.profiles_file,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "summary": {
                CONVERTED: self.count(CONVERTED),
                UNTOUCHED: self.count(UNTOUCHED),
                NEEDS_HUMAN: self.count(NEEDS_HUMAN),
            },
        }


def write_json(report: Report, out: TextIO) -> None:
    out.write(json.dumps(report.as_json(), indent=2) + "\n")


def write_text(report: Report, out: TextIO) -> None:
    """One line per trigger, its changes, warnings and problems indented below it."""
    for f in report.findings:
        where = f"document {f.document} {f.object} trigger {f.trigger} ({f.type})"
        if f.status == CONVERTED:
            outcome = f"converted to {f.new_type}, backend {f.backend}"
            if f.connection:
                outcome += f", connection {f.connection}"
        elif f.status == NEEDS_HUMAN:
            outcome = "NOT converted, needs a human (left as it was)"
        else:
            outcome = f"untouched: {f.reason}"
        out.write(f"migrate: {where}: {outcome}\n")
        for change in f.changes:
            out.write(f"  changed: {change}\n")
        for warning in f.warnings:
            out.write(f"  warning: {warning}\n")
        for problem in f.problems:
            out.write(f"  needs a human: {problem}\n")
    for profile in report.profiles:
        out.write(
            f"migrate: profile {profile.name} (backend {profile.backend}) from "
            f"{profile.authentication}: {len(profile.placeholders)} key(s) to fill from Secrets\n"
        )
    for problem in report.problems:
        out.write(f"migrate: needs a human: {problem}\n")
    for note in report.notes:
        out.write(f"migrate: note: {note}\n")
    out.write(
        f"migrate: {report.count(CONVERTED)} converted, {report.count(UNTOUCHED)} untouched, "
        f"{report.count(NEEDS_HUMAN)} need a human\n"
    )


# -- the profile stub ----------------------------------------------------------------------------

_STUB_HEADER: Final = """\
# Connection profiles for `keda-queue-scaler serve --profiles FILE` (docs/security.md),
# written by `keda-queue-scaler migrate` for the triggers whose TriggerAuthentication it replaced.
#
# A profile takes literal values only: no FromEnv, no reference to a Secret. Each key the
# TriggerAuthentication read from a Secret is a commented placeholder below, naming that Secret
# and key: uncomment it and write the Secret's value (a PEM as a block scalar, `key: |`). Then
# keep this file itself in a Secret mounted into the scaler, never in a ConfigMap.
connections:
"""


def stub_text(profiles: Sequence[ProfileStub]) -> str:
    """The profiles file: literal keys as values, Secret keys as commented placeholders."""
    lines = [_STUB_HEADER.rstrip("\n")]
    for profile in profiles:
        lines.append(f"  {_quoted(profile.name)}:")
        lines.append(f"    # for {', '.join(profile.used_by)}")
        lines.append(f"    backend: {_quoted(profile.backend)}")
        for key, value in profile.values.items():
            lines.append(f"    {key}: {_quoted(value)}  # from the trigger's metadata")
        for p in profile.placeholders:
            shape = '""'
            note = f"; {p.note}" if p.note else ""
            if p.key in _PEM_KEYS:
                shape, note = "|", f"{note}; PEM: its lines indented below the key"
            lines.append(
                f"    # {p.key}: {shape}  # FILL IN: Secret {p.secret}, key {p.secret_key}{note}"
            )
    return "\n".join(lines) + "\n"


def _quoted(value: str) -> str:
    """Plain when YAML reads it back as the same string, else double-quoted (a JSON string is
    a YAML double-quoted scalar)."""
    try:
        plain = yaml.safe_load(value) == value and value == value.strip() and "\n" not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else json.dumps(value, ensure_ascii=False)
