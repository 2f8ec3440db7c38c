"""The ScaledObject/ScaledJob manifest model, read once and shared by ``check`` and ``simulate``.

This module owns reading a manifest: the file (or stdin), the one YAML parse, which documents
count, the shape checks of the fields every tool needs (every problem reported at once), and the
``xxxFromEnv`` resolution KEDA applies before it calls a scaler. Each :class:`ScaledResource`
also keeps its raw ``spec``, so a tool that reads more fields (``simulate``: timing, fallback, HPA
behavior) reads them from there instead of parsing the text again.

What is read
    Every YAML document (``kind: List`` items included) with ``apiVersion: keda.sh/v1alpha1`` and
    ``kind: ScaledObject`` or ``ScaledJob``; other documents (the Deployment next to it) are
    ignored. A trigger's index is its position in ``spec.triggers`` (KEDA names its HPA metric
    ``s{index}-{metricName}``).

The checks are written by hand rather than taken from KEDA's CRD schema: the rules that matter
here (``idleReplicaCount < minReplicaCount <= maxReplicaCount``) live in KEDA's webhook, not in
the schema, and a message such as "quote the value" helps more than a schema's "5 is not of type
'string'".
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from scaler.errors import ManifestError
from scaler.metadata import FROM_ENV_SUFFIX

API_VERSION: Final = "keda.sh/v1alpha1"
SCALED_OBJECT: Final = "ScaledObject"
SCALED_JOB: Final = "ScaledJob"
EXTERNAL_TYPES: Final = ("external", "external-push")
#: KEDA's default maxReplicaCount for both kinds
DEFAULT_MAX_REPLICAS: Final = 100
#: ``scalingStrategy.multipleScalersCalculation`` of a ScaledJob; the first is KEDA's default
JOB_CALCULATIONS: Final = ("max", "min", "avg", "sum")


@dataclass(frozen=True, slots=True)
class ScaledRef:
    """Which object a trigger belongs to."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Replicas:
    """The object's replica bounds and, for a ScaledJob, how triggers are combined."""

    min: int = 0
    max: int = DEFAULT_MAX_REPLICAS
    idle: int | None = None
    calculation: str = JOB_CALCULATIONS[0]


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """One entry of ``spec.triggers``; ``metadata`` as written (FromEnv keys unresolved)."""

    index: int
    type: str
    metadata: Mapping[str, str]
    authentication_ref: bool = False
    #: the trigger's ``metricType`` (KEDA's default ``AverageValue``); never sent to the scaler
    metric_type: str = "AverageValue"

    @property
    def external(self) -> bool:
        return self.type in EXTERNAL_TYPES


@dataclass(frozen=True, slots=True)
class ScaledResource:
    """A ScaledObject or ScaledJob and its triggers.

    ``spec`` is the object's ``spec`` mapping as parsed, for the fields this model does not hold;
    it may hold credentials written in trigger metadata, so it stays out of ``repr``.
    """

    ref: ScaledRef
    replicas: Replicas
    triggers: tuple[TriggerSpec, ...]
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


async def read_manifest(path: str) -> list[ScaledResource]:
    """Every ScaledObject/ScaledJob of the file ``path`` (``-`` reads stdin), read off the loop.

    :raises ManifestError: ``cannot read PATH: why``, or :func:`load_manifest`'s problems, each
        prefixed with ``PATH: ``
    """
    try:
        text = await asyncio.to_thread(_read_text, path)
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError([f"cannot read {path}: {_read_problem(err)}"]) from None
    try:
        return load_manifest(text)
    except ManifestError as err:
        raise ManifestError(f"{path}: {problem}" for problem in err.problems) from None


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _read_problem(err: OSError | UnicodeDecodeError) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return err.strerror or type(err).__name__


def load_manifest(text: str) -> list[ScaledResource]:
    """Every ScaledObject/ScaledJob in a (multi-document) YAML text.

    :raises ManifestError: invalid YAML, no ScaledObject/ScaledJob, or fields of the wrong shape
        (listing every problem)
    """
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise ManifestError([f"invalid YAML: {_yaml_problem(err)}"]) from None
    problems: list[str] = []
    resources: list[ScaledResource] = []
    for position, document in enumerate(_expand_lists(documents), start=1):
        if not isinstance(document, dict):
            continue
        kind = document.get("kind")
        if document.get("apiVersion") != API_VERSION or kind not in (SCALED_OBJECT, SCALED_JOB):
            continue
        resource = _scaled_resource(document, str(kind), position, problems)
        if resource is not None:
            resources.append(resource)
    if problems:
        raise ManifestError(problems)
    if not resources:
        raise ManifestError(
            [f"no {SCALED_OBJECT} or {SCALED_JOB} with apiVersion {API_VERSION} found"]
        )
    return resources


def _yaml_problem(err: yaml.YAMLError) -> str:
    # Only the problem and its position: the default message quotes the offending line, which
    # may hold a password.
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        problem = err.problem or err.context or "syntax error"
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return type(err).__name__


def _expand_lists(documents: list[Any]) -> list[Any]:
    # `kubectl get -o yaml` wraps several objects in `kind: List`
    expanded: list[Any] = []
    for document in documents:
        if (
            isinstance(document, dict)
            and document.get("kind") == "List"
            and isinstance(document.get("items"), list)
        ):
            expanded.extend(document["items"])
        else:
            expanded.append(document)
    return expanded


def _scaled_resource(
    document: dict[Any, Any], kind: str, position: int, problems: list[str]
) -> ScaledResource | None:
    meta = document.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    namespace = meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        problems.append(f"{kind} (document {position}): metadata.name is missing")
        return None
    ref = ScaledRef(kind, str(namespace), name)
    where = str(ref)
    before = len(problems)
    spec = document.get("spec")
    if not isinstance(spec, dict):
        problems.append(f"{where}: spec is missing or not a mapping")
        return None

    minimum = _count(spec, "minReplicaCount", 0, where, problems)
    maximum = _count(spec, "maxReplicaCount", DEFAULT_MAX_REPLICAS, where, problems)
    idle: int | None = None
    calculation = JOB_CALCULATIONS[0]
    if kind == SCALED_OBJECT:
        if "idleReplicaCount" in spec and spec["idleReplicaCount"] is not None:
            idle = _count(spec, "idleReplicaCount", 0, where, problems)
            if idle >= minimum:
                problems.append(
                    f"{where}: idleReplicaCount ({idle}) must be less than "
                    f"minReplicaCount ({minimum})"
                )
        if maximum < 1:
            problems.append(f"{where}: maxReplicaCount must be at least 1")
    else:
        strategy = spec.get("scalingStrategy")
        if isinstance(strategy, dict):
            chosen = strategy.get("multipleScalersCalculation")
            if chosen is not None and chosen != "":
                if chosen not in JOB_CALCULATIONS:
                    problems.append(
                        f"{where}: scalingStrategy.multipleScalersCalculation must be one of "
                        f"[{', '.join(JOB_CALCULATIONS)}]"
                    )
                else:
                    calculation = str(chosen)
    if minimum > maximum:
        problems.append(
            f"{where}: minReplicaCount ({minimum}) must not exceed maxReplicaCount ({maximum})"
        )

    raw_triggers = spec.get("triggers")
    triggers: list[TriggerSpec] = []
    if not isinstance(raw_triggers, list) or not raw_triggers:
        problems.append(f"{where}: spec.triggers is missing or empty")
    else:
        for index, raw in enumerate(raw_triggers):
            trigger = _trigger_spec(raw, index, where, problems)
            if trigger is not None:
                triggers.append(trigger)
    if len(problems) > before:
        return None
    bounds = Replicas(minimum, maximum, idle, calculation)
    return ScaledResource(ref, bounds, tuple(triggers), spec)


def _count(spec: dict[Any, Any], key: str, default: int, where: str, problems: list[str]) -> int:
    value = spec.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: spec.{key} must be a non-negative integer")
        return default
    return value


def _trigger_spec(raw: Any, index: int, where: str, problems: list[str]) -> TriggerSpec | None:
    at = f"{where}: spec.triggers[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{at} is not a mapping")
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        problems.append(f"{at}.type is missing")
        return None
    metadata = raw.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        problems.append(f"{at}.metadata is not a mapping")
        return None
    strings: dict[str, str] = {}
    for key, value in metadata.items():
        # The CRD declares map[string]string: the API server rejects `listLength: 5`.
        if not isinstance(key, str):
            problems.append(f"{at}.metadata has a key that is not a string")
        elif not isinstance(value, str):
            problems.append(
                f"{at}.metadata.{key} is {_yaml_type(value)}, not a string "
                "(Kubernetes accepts only strings here: quote the value)"
            )
        else:
            strings[key] = value
    auth = raw.get("authenticationRef") is not None
    metric_type = raw.get("metricType")
    if not isinstance(metric_type, str) or not metric_type:
        metric_type = "AverageValue"
    return TriggerSpec(index, kind, strings, authentication_ref=auth, metric_type=metric_type)


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def resolve_from_env(
    metadata: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The metadata KEDA would forward: ``xxxFromEnv: NAME`` becomes ``xxxFromEnv: <value>``.

    :returns: the resolved map and the FromEnv keys dropped because their variable is unset or
        empty in ``environ`` (KEDA drops them the same way)
    """
    resolved: dict[str, str] = {}
    dropped: list[str] = []
    for key, value in metadata.items():
        if _is_from_env(key):
            found = environ.get(value)
            if found:
                resolved[key] = found
            else:
                dropped.append(key)
        else:
            resolved[key] = value
    return resolved, dropped


def dropped_note(key: str, variable: str) -> str:
    """What both tools say about a FromEnv key whose variable is unset or empty here."""
    return f"{key}: variable {variable!r} is unset or empty here; the key is dropped, as KEDA does"


def _is_from_env(key: str) -> bool:
    return key.endswith(FROM_ENV_SUFFIX) and len(key) > len(FROM_ENV_SUFFIX)
