"""The per-trigger rules of ``migrate``: what KEDA does differently for an external trigger.

A :class:`TriggerWork` is one built-in trigger being rewritten: its metadata as it will be and
the edits that make it, with its :class:`~scaler.tools.migrate_report.Finding`. The functions
here each apply one difference between KEDA's built-in trigger and the same keys sent to the
scaler, record the edit and say so in the finding (or, when it cannot be done, why):

* :func:`tls`: ``enableTLS: "true"`` is also read by KEDA for its own connection to the scaler:
  ``tls: enable`` on Redis triggers; removed on Kafka and RabbitMQ, whose built-in triggers
  have no such key;
* :func:`names`: a Redis ``listName``/``stream`` with a comma is one key for KEDA and a comma
  list for the scaler, unless ``useGlob: "true"``;
* :func:`cluster_database`: a Cluster's ``databaseIndex`` other than 0 is ignored by KEDA and
  refused by the scaler;
* :func:`unknown_keys`: keys the backend does not declare are kept and reported;
* :func:`trial_parse`: literal metadata is parsed by the backend, which says now what it would
  refuse at ``GetMetricSpec``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from scaler.backends.base import AnyBackend
from scaler.errors import MetadataError
from scaler.metadata import BACKEND_KEY, FROM_ENV_SUFFIX, declared
from scaler.tools.migrate_report import Finding, ProfileStub

SCALER_ADDRESS_KEY: Final = "scalerAddress"
ENABLE_TLS: Final = "enableTLS"
#: Go's strconv.ParseBool, which KEDA applies to enableTLS
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
#: the Redis keys naming what is read: one key for KEDA, a comma list for the scaler
_NAME_KEYS: Final = ("listName", "stream")
_GLOB_CHARACTERS: Final = frozenset("*?[]\\")
_USE_GLOB: Final = "useGlob"


@dataclass
class Edit:
    """One edit of the trigger's metadata mapping, made once the whole trigger converts."""

    kind: str  # rename | delete | after (new_key after key) | append
    key: str
    new_key: str = ""
    value: str = ""


@dataclass
class TriggerWork:
    """One trigger being rewritten: the metadata as it will be, and the edits that make it.

    :param header: the keys written first, in order (``scalerAddress``, ``backend``, and
        ``connection`` when a profile replaces the TriggerAuthentication)
    :param profile: the profile it needs, with the identity that lets triggers share it
    """

    backend: type[AnyBackend]
    finding: Finding
    metadata: dict[str, str]
    edits: list[Edit] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    profile: tuple[tuple[Any, ...], ProfileStub] | None = None

    def canonical(self, key: str) -> str | None:
        base = key.removesuffix(FROM_ENV_SUFFIX) if key.endswith(FROM_ENV_SUFFIX) else key
        for _, p in declared(self.backend.params):
            if base in p.names:
                return p.key
        return None

    def given(self, canonical: str) -> list[str]:
        return [k for k in self.metadata if self.canonical(k) == canonical]

    def rename(self, old: str, new: str, value: str) -> None:
        self.metadata = {
            (new if k == old else k): (value if k == old else v) for k, v in self.metadata.items()
        }
        self.edits.append(Edit("rename", old, new, value))

    def delete(self, key: str) -> None:
        del self.metadata[key]
        self.edits.append(Edit("delete", key))

    def after(self, anchor: str, key: str, value: str) -> None:
        keys = list(self.metadata.items())
        at = [k for k, _ in keys].index(anchor) + 1
        self.metadata = dict([*keys[:at], (key, value), *keys[at:]])
        self.edits.append(Edit("after", anchor, key, value))

    def append(self, key: str, value: str) -> None:
        self.metadata[key] = value
        self.edits.append(Edit("append", key, value=value))


def tls(work: TriggerWork) -> None:
    if ENABLE_TLS not in work.metadata:
        return
    finding = work.finding
    value = work.metadata[ENABLE_TLS].strip()
    if work.canonical(ENABLE_TLS) is None:
        work.delete(ENABLE_TLS)
        finding.changes.append(
            f"removed enableTLS: KEDA's built-in {finding.type} trigger has no such key, but on "
            "an external trigger KEDA would switch its own connection to the scaler to TLS "
            "(TLS to the broker is tls: enable)"
        )
    elif value in _TRUE:
        if work.given("tls"):
            finding.problems.append("both enableTLS and tls are set, which KEDA refuses")
            return
        work.rename(ENABLE_TLS, "tls", "enable")
        finding.changes.append(
            'enableTLS: "true" -> tls: enable: on an external trigger KEDA reads enableTLS '
            "itself and would switch its own connection to the scaler to TLS; tls switches TLS "
            "to Redis only"
        )
    elif value not in _FALSE:
        finding.problems.append("enableTLS is not a boolean, which KEDA refuses")


def names(work: TriggerWork) -> None:
    for key in _NAME_KEYS:
        value = work.metadata.get(key)
        if value is None or "," not in value or work.given(_USE_GLOB):
            continue
        if work.canonical(key) is None:
            continue
        if _GLOB_CHARACTERS & set(value):
            work.finding.problems.append(
                f"{key} holds a comma and glob characters: KEDA reads it as one key of that "
                "name, the scaler as a comma list, or with useGlob as a pattern: escape the "
                "pattern's characters with \\ and set useGlob by hand"
            )
            continue
        work.after(key, _USE_GLOB, "true")
        work.finding.changes.append(
            f'useGlob: "true" added after {key}: KEDA reads a {key} with a comma as one key of '
            "that name, the scaler without useGlob as a comma list of keys"
        )


def cluster_database(work: TriggerWork) -> None:
    if work.backend.family() != "redis-cluster":
        return
    keys = work.given("databaseIndex")
    if not any(work.metadata[k].strip() not in ("", "0") for k in keys):
        return
    for key in keys:
        work.delete(key)
    work.finding.changes.append(
        "removed databaseIndex: KEDA's Cluster triggers ignore it, the scaler refuses a "
        "database other than 0 on a Cluster"
    )


def unknown_keys(work: TriggerWork) -> None:
    for key in work.metadata:
        if key in (SCALER_ADDRESS_KEY, BACKEND_KEY) or work.canonical(key) is not None:
            continue
        work.finding.warnings.append(
            f"{key} is unknown to backend {work.backend.name}: kept, the scaler ignores it"
        )


def trial_parse(work: TriggerWork, address: str) -> None:
    """Parse what the scaler will receive, so that the backend says now what it would refuse
    (a target of 0, ``sasl: gssapi``...) rather than at ``GetMetricSpec``.

    Values migrate cannot know (``xxxFromEnv`` variables, the profile's placeholders) are left
    out, and so is every problem that names one of those keys: only what is certain counts.
    """
    unknown = {
        k.removesuffix(FROM_ENV_SUFFIX) for k in work.metadata if k.endswith(FROM_ENV_SUFFIX)
    }
    metadata = {k: v for k, v in work.metadata.items() if not k.endswith(FROM_ENV_SUFFIX)}
    if work.profile is not None:
        stub = work.profile[1]
        metadata.update(stub.values)
        unknown.update(p.key for p in stub.placeholders)
    names = {n for _, p in declared(work.backend.params) if unknown & set(p.names) for n in p.names}
    metadata = {SCALER_ADDRESS_KEY: address, BACKEND_KEY: work.backend.name, **metadata}
    try:
        work.backend(1.0).parse(metadata)
    except MetadataError as err:
        work.finding.problems.extend(
            f"the scaler would refuse the metadata: {problem}"
            for problem in err.problems
            if not any(re.search(rf"\b{re.escape(name)}\b", problem) for name in names)
        )
