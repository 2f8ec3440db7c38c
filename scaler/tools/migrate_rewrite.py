"""The rewrite of KEDA's built-in Redis, Kafka and RabbitMQ triggers into the scaler's own.

Each built-in backend is named after the KEDA trigger type it replaces (:data:`KEDA_TYPES`), and
keeps that trigger's keys, so a trigger moves over by its ``type`` (``external``, or
``external-push``) and two added keys, ``scalerAddress`` and ``backend``. The rest is what KEDA
does differently for an external trigger, each handled here and reported:

* ``authenticationRef``: KEDA forwards no TriggerAuthentication to an external scaler. Its
  ``env`` entries become ``<parameter>FromEnv: <variable>`` (KEDA resolves those on the scale
  target, as it did for the TriggerAuthentication); its ``secretTargetRef`` entries become a
  connection profile (``connection: <name>``), whose stub names each Secret and key, and the
  trigger's other connection keys move into that profile too (metadata naming a profile may not
  set them). A parameter that is not a connection key of the backend cannot go into a profile,
  and any other source (Vault, a cloud secret store, pod identity) cannot travel at all: the
  trigger then needs a human.
* ``enableTLS``, a Redis key with a comma, a Cluster's ``databaseIndex``, keys the backend does
  not declare, and what the backend would refuse: the rules of :mod:`.migrate_rules`.

A trigger is rewritten only when all of it converts; otherwise it is left exactly as it was (the
built-in trigger keeps working) and its finding says why. ``metricType``, ``name``,
``useCachedMetrics`` and every other trigger field stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap

from scaler.backends import BACKENDS
from scaler.backends.base import AnyBackend
from scaler.metadata import BACKEND_KEY, FROM_ENV_SUFFIX
from scaler.profiles import CONNECTION_KEY
from scaler.tools import migrate_rules as rules
from scaler.tools.manifest import API_VERSION, EXTERNAL_TYPES, SCALED_JOB
from scaler.tools.migrate_auth import Authentication, Inventory, resolve
from scaler.tools.migrate_report import CONVERTED, NEEDS_HUMAN, Finding, ProfileStub
from scaler.tools.migrate_rules import SCALER_ADDRESS_KEY, TriggerWork
from scaler.tools.migrate_yaml import delete_key, insert_key, rename_key, scalar

#: the KEDA trigger types migrated: each is the name of the backend that replaces it
KEDA_TYPES: Final = tuple(cls.name for cls in BACKENDS)
#: the Service the Helm chart creates, as the docs' examples name it
DEFAULT_SCALER_ADDRESS: Final = "keda-queue-scaler.keda.svc.cluster.local:9090"
AUTHENTICATION_REF: Final = "authenticationRef"


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line chose."""

    scaler_address: str = DEFAULT_SCALER_ADDRESS
    push: bool = False

    @property
    def trigger_type(self) -> str:
        return EXTERNAL_TYPES[1] if self.push else EXTERNAL_TYPES[0]


def objects(data: Any) -> Iterator[Any]:
    """The document and, for ``kind: List``, its items."""
    if isinstance(data, Mapping) and data.get("kind") == "List":
        items = data.get("items")
        yield from items if isinstance(items, list) else ()
    else:
        yield data


def is_scaled(data: Any) -> bool:
    return (
        isinstance(data, CommentedMap)
        and data.get("apiVersion") == API_VERSION
        and data.get("kind") in ("ScaledObject", SCALED_JOB)
        and isinstance(data.get("spec"), Mapping)
        and isinstance(data["spec"].get("triggers"), list)
    )


class Rewriter:
    """Rewrites the built-in triggers of ScaledObjects/ScaledJobs in place; collects the
    profiles they need.

    :param inventory: the TriggerAuthentications and Secrets of the same input
    """

    def __init__(
        self,
        options: Options,
        inventory: Inventory,
        backends: tuple[type[AnyBackend], ...] = BACKENDS,
    ) -> None:
        self._options = options
        self._inventory = inventory
        self._classes = {cls.name: cls for cls in backends}
        self.profiles: dict[str, ProfileStub] = {}
        self._identities: dict[tuple[Any, ...], str] = {}
        #: triggers and metadata mappings that YAML aliases make one object in several places
        self._shared: set[int] = set()

    def share(self, resources: list[CommentedMap]) -> None:
        """Note the triggers and metadata mappings that appear more than once among
        ``resources`` (``&anchor`` and ``*alias``): rewriting one would rewrite the others."""
        seen: set[int] = set()
        for resource in resources:
            for trigger in resource["spec"]["triggers"]:
                for node in (trigger, _get(trigger, "metadata")):
                    if isinstance(node, Mapping):
                        self._shared.update({id(node)} & seen)
                        seen.add(id(node))

    def scaled(self, document: int, resource: CommentedMap) -> tuple[list[Finding], bool]:
        """Rewrite every built-in trigger of one ScaledObject/ScaledJob; (findings, changed)."""
        meta = resource.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        namespace = str(meta.get("namespace") or "default")
        ref = f"{resource['kind']}/{namespace}/{meta.get('name')}"
        findings: list[Finding] = []
        changed = False
        for index, trigger in enumerate(resource["spec"]["triggers"]):
            finding = Finding(document, ref, index, str(_get(trigger, "type")))
            findings.append(finding)
            if self._trigger(resource, namespace, trigger, finding):
                changed = True
        return findings, changed

    def _trigger(
        self, resource: CommentedMap, namespace: str, trigger: Any, finding: Finding
    ) -> bool:
        cls = self._classes.get(finding.type) if finding.type in KEDA_TYPES else None
        if cls is None or not isinstance(trigger, CommentedMap):
            finding.reason = (
                "already an external trigger"
                if finding.type in EXTERNAL_TYPES
                else f"{finding.type} is not a built-in Redis, Kafka or RabbitMQ trigger"
            )
            return False
        raw = trigger.get("metadata")
        work = TriggerWork(cls, finding, {str(k): str(v) for k, v in (raw or {}).items()})
        if {id(trigger), id(raw)} & self._shared:
            finding.problems.append(
                "the trigger or its metadata is shared with another trigger through a YAML "
                "alias, and rewriting one would rewrite both: write each out in full"
            )
        self._header(work)
        rules.tls(work)
        rules.names(work)
        rules.cluster_database(work)
        if AUTHENTICATION_REF in trigger:
            self._authentication(resource, namespace, trigger, work)
        rules.unknown_keys(work)
        if self._options.push and resource["kind"] == SCALED_JOB:
            finding.warnings.append(
                "--push on a ScaledJob: KEDA only logs the pushes of a ScaledJob's trigger; "
                "external is enough"
            )
        if not finding.problems:
            rules.trial_parse(work, self._options.scaler_address)
        if finding.problems:
            finding.status = NEEDS_HUMAN
            finding.changes.clear()  # none is made: the trigger stays as it was
            return False
        self._register(work)
        self._apply(trigger, work)
        finding.status = CONVERTED
        finding.new_type = self._options.trigger_type
        finding.backend = cls.name
        finding.changes.insert(
            0,
            f"type {finding.type} -> {finding.new_type}; added scalerAddress "
            f"({self._options.scaler_address}) and backend: {cls.name}",
        )
        return True

    def _header(self, work: TriggerWork) -> None:
        for key in (SCALER_ADDRESS_KEY, BACKEND_KEY):
            if key in work.metadata:
                work.finding.warnings.append(
                    f"{key} was set on the built-in trigger (KEDA ignored it); replaced"
                )
        if any(k.removesuffix(FROM_ENV_SUFFIX) == CONNECTION_KEY for k in work.metadata):
            work.finding.problems.append(
                f"the metadata has a {CONNECTION_KEY} key, which KEDA's built-in trigger ignored "
                "and the scaler reads as the name of a connection profile: remove it first"
            )
        work.header = {
            SCALER_ADDRESS_KEY: self._options.scaler_address,
            BACKEND_KEY: work.backend.name,
        }

    def _authentication(
        self, resource: CommentedMap, namespace: str, trigger: CommentedMap, work: TriggerWork
    ) -> None:
        finding = work.finding
        auth = resolve(trigger[AUTHENTICATION_REF], namespace, self._inventory, resource)
        finding.problems.extend(auth.problems)
        finding.warnings.extend(auth.warnings)
        if auth.problems:
            return
        connection_keys = work.backend.connection_keys()
        for placeholder in auth.secrets:
            canonical = work.canonical(placeholder.key)
            where = f"{placeholder.key} (Secret {placeholder.secret}, key {placeholder.secret_key})"
            if canonical is None:
                finding.problems.append(
                    f"{auth.label} gives {where}, which backend {work.backend.name} does not know"
                )
            elif placeholder.key not in connection_keys:
                finding.problems.append(
                    f"{auth.label} gives {where}, which is not a connection key of backend "
                    f"{work.backend.name}: no profile can hold it, and {placeholder.key}FromEnv "
                    "needs the Secret key as an env variable of the scale target (add it to "
                    f"the workload, then set {placeholder.key}FromEnv on the trigger)"
                )
            elif work.given(canonical):
                finding.problems.append(
                    f"both the trigger's metadata and {auth.label} set {placeholder.key}"
                )
        for parameter, _ in auth.env:
            canonical = work.canonical(parameter)
            if canonical is not None and work.given(canonical):
                finding.problems.append(
                    f"both the trigger's metadata and {auth.label} set {parameter}"
                )
            elif canonical is None:
                finding.warnings.append(
                    f"{auth.label} env gives {parameter}, which backend {work.backend.name} does "
                    "not know: its FromEnv key is kept but ignored"
                )
        if finding.problems:
            return
        for parameter, variable in auth.env:
            work.append(parameter + FROM_ENV_SUFFIX, variable)
            finding.changes.append(
                f"{auth.label} env {parameter} -> {parameter}{FROM_ENV_SUFFIX}: {variable} "
                "(KEDA resolves it on the scale target, as it did for the TriggerAuthentication)"
            )
        if auth.secrets:
            self._profile(work, auth)
        else:
            finding.changes.append(f"removed {AUTHENTICATION_REF} to {auth.label}")

    def _profile(self, work: TriggerWork, auth: Authentication) -> None:
        finding = work.finding
        connection_keys = work.backend.connection_keys()
        moved: dict[str, str] = {}
        for key, value in list(work.metadata.items()):
            base = key.removesuffix(FROM_ENV_SUFFIX) if key.endswith(FROM_ENV_SUFFIX) else key
            if base not in connection_keys:
                continue
            if key != base:
                finding.problems.append(
                    f"{key}: a connection key cannot stay beside {CONNECTION_KEY}, and a profile "
                    "takes literal values only: put its value in the profile by hand"
                )
                continue
            moved[key] = value
            work.delete(key)
        if finding.problems:
            return
        identity = (
            auth.label,
            work.backend.family(),
            tuple(sorted(moved.items())),
            tuple((p.key, p.secret, p.secret_key) for p in auth.secrets),
        )
        name = self._identities.get(identity)
        if name is None:
            name, number = auth.profile_name, 2
            while name in self.profiles:
                name, number = f"{auth.profile_name}-{number}", number + 1
        # registered only once the whole trigger converts (see _register)
        stub = ProfileStub(name, work.backend.name, auth.label, moved, list(auth.secrets))
        work.profile = (identity, stub)
        work.header[CONNECTION_KEY] = name
        finding.connection = name
        sources = ", ".join(
            f"{p.key} (Secret {p.secret}, key {p.secret_key})" for p in auth.secrets
        )
        finding.changes.append(
            f"{AUTHENTICATION_REF} to {auth.label} -> {CONNECTION_KEY}: {name}; the profile "
            f"stub has a placeholder to fill in for {sources}"
        )
        if moved:
            finding.changes.append(
                f"moved {', '.join(moved)} into profile {name}: metadata naming a profile may "
                "not set connection keys"
            )

    def _register(self, work: TriggerWork) -> None:
        if work.profile is None:
            return
        identity, stub = work.profile
        if identity not in self._identities:
            self._identities[identity] = stub.name
            self.profiles[stub.name] = stub
        self.profiles[stub.name].used_by.append(
            f"{work.finding.object} trigger {work.finding.trigger}"
        )

    def _apply(self, trigger: CommentedMap, work: TriggerWork) -> None:
        trigger["type"] = self._options.trigger_type
        meta = trigger.get("metadata")
        if not isinstance(meta, CommentedMap):
            meta = CommentedMap()
            if "metadata" in trigger:
                trigger["metadata"] = meta
            else:
                insert_key(trigger, list(trigger).index("type") + 1, "metadata", meta)
        for edit in work.edits:
            if edit.kind == "rename":
                rename_key(meta, edit.key, edit.new_key, scalar(edit.value))
            elif edit.kind == "delete":
                delete_key(meta, edit.key)
            elif edit.kind == "after":
                insert_key(meta, list(meta).index(edit.key) + 1, edit.new_key, scalar(edit.value))
            else:
                insert_key(meta, len(meta), edit.key, scalar(edit.value))
        for position, (key, value) in enumerate(work.header.items()):
            if key in meta:
                meta[key] = scalar(value)
            else:
                insert_key(meta, position, key, scalar(value))
        if AUTHENTICATION_REF in trigger:
            delete_key(trigger, AUTHENTICATION_REF)


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None
