"""TriggerAuthentications for ``migrate``: what the input holds, and what a reference resolves to.

KEDA resolves a trigger's ``authenticationRef`` itself and forwards nothing of it to an external
scaler (keda#2571), so ``migrate`` must turn each source of the TriggerAuthentication into
something that does travel. Two sources can:

* ``env`` (parameter, the name of an env variable of the scale target): the trigger's
  ``<parameter>FromEnv: <variable>``, which KEDA resolves on the same container;
* ``secretTargetRef`` (parameter, Secret name and key): a key of a connection profile, whose
  value the operator fills in from that Secret (profiles take literal values only).

Every other source (``hashiCorpVault``, ``azureKeyVault``, ``awsSecretManager``,
``gcpSecretManager``, ``configMapTargetRef``, ``boundServiceAccountToken``, a ``podIdentity``
other than ``none``) is resolved by KEDA alone: the trigger needs a human. So does a
TriggerAuthentication that is not in the input.

The TriggerAuthentication and ClusterTriggerAuthentication documents and the Secrets are read
for their names and the *names* of their keys only; no Secret value is ever read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scaler.tools.manifest import API_VERSION
from scaler.tools.migrate_report import Placeholder

TRIGGER_AUTHENTICATION: Final = "TriggerAuthentication"
CLUSTER_TRIGGER_AUTHENTICATION: Final = "ClusterTriggerAuthentication"
#: where KEDA reads a ClusterTriggerAuthentication's Secrets (KEDA_CLUSTER_OBJECT_NAMESPACE)
CLUSTER_NAMESPACE: Final = "keda"
_SECRETS: Final = "secretTargetRef"
_ENV: Final = "env"
_POD_IDENTITY: Final = "podIdentity"


@dataclass
class Inventory:
    """The TriggerAuthentications (their ``spec``) and the Secrets (their key names) of the
    input, by kind, namespace and name (a ClusterTriggerAuthentication's namespace is "")."""

    authentications: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    secrets: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[Any]) -> Inventory:
        inventory = cls()
        for data in objects:
            if not isinstance(data, Mapping):
                continue
            meta = data.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            name = meta.get("name")
            if not isinstance(name, str):
                continue
            namespace = str(meta.get("namespace") or "default")
            kind = data.get("kind")
            if data.get("apiVersion") == API_VERSION and kind == TRIGGER_AUTHENTICATION:
                inventory.authentications[(kind, namespace, name)] = data.get("spec")
            elif data.get("apiVersion") == API_VERSION and kind == CLUSTER_TRIGGER_AUTHENTICATION:
                inventory.authentications[(kind, "", name)] = data.get("spec")
            elif data.get("apiVersion") == "v1" and kind == "Secret":
                keys: set[str] = set()
                for section in ("data", "stringData"):
                    values = data.get(section)
                    if isinstance(values, Mapping):
                        keys.update(str(k) for k in values)  # the names only
                inventory.secrets[(namespace, name)] = frozenset(keys)
        return inventory


@dataclass
class Authentication:
    """What one ``authenticationRef`` resolves to.

    :param label: ``TriggerAuthentication <namespace>/<name>`` (or the cluster one's name)
    :param profile_name: the name a profile made from it starts from
    :param env: (parameter, env variable) of its ``env`` entries
    :param secrets: a placeholder per ``secretTargetRef`` entry
    :param problems: why it cannot be converted (nothing else is then meaningful)
    """

    label: str
    profile_name: str
    env: list[tuple[str, str]] = field(default_factory=list)
    secrets: list[Placeholder] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def resolve(ref: Any, namespace: str, inventory: Inventory, resource: Any) -> Authentication:
    """The TriggerAuthentication a trigger's ``authenticationRef`` names, turned into env
    entries and Secret placeholders, with every problem that prevents it.

    :param namespace: the ScaledObject's/ScaledJob's, where a TriggerAuthentication must be
    :param resource: the ScaledObject/ScaledJob, for the container its FromEnv keys read
    """
    name = ref.get("name") if isinstance(ref, Mapping) else None
    kind = (ref.get("kind") if isinstance(ref, Mapping) else None) or TRIGGER_AUTHENTICATION
    if not isinstance(name, str) or not name:
        return Authentication("authenticationRef", "", problems=["authenticationRef has no name"])
    if kind == CLUSTER_TRIGGER_AUTHENTICATION:
        auth = Authentication(f"{kind} {name}", name)
        key: tuple[str, str, str] = (kind, "", name)
        secret_namespace = CLUSTER_NAMESPACE
    else:
        auth = Authentication(f"{kind} {namespace}/{name}", f"{namespace}-{name}")
        key = (str(kind), namespace, name)
        secret_namespace = namespace
    if kind not in (TRIGGER_AUTHENTICATION, CLUSTER_TRIGGER_AUTHENTICATION):
        auth.problems.append(f"authenticationRef has kind {kind}, which KEDA does not know")
        return auth
    if key not in inventory.authentications:
        auth.problems.append(
            f"authenticationRef names {auth.label}, which is not in the input: give it in the "
            "same input (one multi-document file) so that migrate can convert its entries"
        )
        return auth
    spec = inventory.authentications[key]
    spec = spec if isinstance(spec, Mapping) else {}
    for source, value in spec.items():
        if source in (_SECRETS, _ENV) or not value:
            continue
        if source == _POD_IDENTITY and _provider(value) in ("", "none"):
            continue
        auth.problems.append(
            f"{auth.label} uses {source}, which KEDA resolves itself and never forwards to an "
            "external scaler: give the scaler that credential another way (a connection "
            "profile, or an env variable of the scale target and <parameter>FromEnv)"
        )
    seen: set[str] = set()
    for entry in _entries(spec.get(_SECRETS), auth, _SECRETS, ("parameter", "name", "key")):
        parameter, secret, secret_key = entry
        _once(parameter, seen, auth)
        known = inventory.secrets.get((secret_namespace, secret))
        where = f"{secret_namespace}/{secret}"
        placeholder = Placeholder(parameter, where, secret_key)
        if known is not None and secret_key not in known:
            auth.warnings.append(f"Secret {where} in the input has no key {secret_key}")
        auth.secrets.append(placeholder)
    for entry in _entries(spec.get(_ENV), auth, _ENV, ("parameter", "name")):
        parameter, variable = entry
        _once(parameter, seen, auth)
        container = _container(ref_entry=spec.get(_ENV), parameter=parameter)
        source = _source_container(resource)
        if container and container != source:
            auth.warnings.append(
                f"{auth.label} reads {variable} from container {container}; KEDA resolves "
                f"{parameter}FromEnv from "
                + (f"container {source}" if source else "the first container")
                + " (envSourceContainerName)"
            )
        auth.env.append((parameter, variable))
    if not auth.problems and not auth.env and not auth.secrets:
        auth.problems.append(f"{auth.label} has no secretTargetRef or env entry")
    return auth


def _provider(value: Any) -> str:
    return str(value.get("provider") or "") if isinstance(value, Mapping) else ""


def _entries(
    value: Any, auth: Authentication, source: str, fields: tuple[str, ...]
) -> list[tuple[str, ...]]:
    if value is None:
        return []
    if not isinstance(value, list):
        auth.problems.append(f"{auth.label}: {source} is not a list")
        return []
    entries = []
    for position, entry in enumerate(value):
        got = tuple(entry.get(f) if isinstance(entry, Mapping) else None for f in fields)
        if not all(isinstance(g, str) and g for g in got):
            auth.problems.append(
                f"{auth.label}: {source}[{position}] needs {', '.join(fields)} as strings"
            )
            continue
        entries.append(tuple(str(g) for g in got))
    return entries


def _once(parameter: str, seen: set[str], auth: Authentication) -> None:
    if parameter in seen:
        auth.problems.append(f"{auth.label} gives {parameter} twice")
    seen.add(parameter)


def _container(ref_entry: Any, parameter: str) -> str:
    for entry in ref_entry if isinstance(ref_entry, list) else ():
        if isinstance(entry, Mapping) and entry.get("parameter") == parameter:
            return str(entry.get("containerName") or "")
    return ""


def _source_container(resource: Any) -> str:
    spec = resource.get("spec") if isinstance(resource, Mapping) else None
    if not isinstance(spec, Mapping):
        return ""
    target = spec.get("scaleTargetRef")
    if isinstance(target, Mapping) and target.get("envSourceContainerName"):
        return str(target["envSourceContainerName"])
    return str(spec.get("envSourceContainerName") or "")
