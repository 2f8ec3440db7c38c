"""``keda-queue-scaler check FILE``: evaluate a manifest's external triggers as KEDA would.

This module owns the ``check`` subcommand: reading ScaledObject/ScaledJob manifests, emulating
what KEDA sends the scaler for each trigger, evaluating the triggers through the
:class:`~scaler.engine.Engine`, the replica arithmetic of the HPA and of KEDA's job executor, and
the table and JSON output. The CLI builds and closes the engine; :func:`run` only uses it.

What is read
    Every YAML document (``kind: List`` items included) with ``apiVersion: keda.sh/v1alpha1`` and
    ``kind: ScaledObject`` or ``ScaledJob``; other documents (the Deployment next to it) are
    ignored. Triggers of type ``external`` and ``external-push`` are evaluated; other types are
    listed as skipped. A trigger's index is its position in ``spec.triggers`` (KEDA names its HPA
    metric ``s{index}-{metricName}``).

What the scaler receives
    The trigger's ``metadata`` as it is, except ``xxxFromEnv`` keys: KEDA reads the named
    environment variable of the scale target's container and forwards its *value* under the same
    key (``passwordFromEnv: <value>``), dropping the key when the variable is unset or empty.
    ``check`` has no workload, so it resolves those names from **its own environment**. Secret
    values are never printed (error messages are scrubbed of them too).

Replica arithmetic (``desiredReplicas``)
    Per trigger the result is computed as if the trigger were alone on the object; with several
    external triggers the object-level result is printed as well: a ScaledObject's HPA takes the
    maximum over its metrics and KEDA calls the object active if any trigger is active.

    *ScaledObject* (``minReplicaCount`` default 0, ``maxReplicaCount`` default 100,
    ``idleReplicaCount`` unset by default; ``metricType: AverageValue`` assumed)::

        inactive and (min == 0 or idleReplicaCount set)  ->  idleReplicaCount, else 0
        otherwise  ->  clamp(ceil(value / target), low, max)
                       with low = max(min, 1) when active, min when inactive

    ``ceil(value / target)`` is computed in milli-units, as the HPA compares quantities, so 1.1
    over 0.1 is 11, not the 12 of floating point. The HPA's 10% tolerance, its stabilisation
    windows and ``metricType: Value`` depend on the current replica count, which ``check`` does
    not know; they are not applied. When a trigger failed the object-level count is not computed
    (the HPA's answer then depends on the current replica count and on ``fallback``).

    *ScaledJob* (``minReplicaCount`` default 0, ``maxReplicaCount`` default 100)::

        jobs = max(min, min(ceil(value / target), max))  when active
        jobs = min                                        when inactive

    The object-level count follows KEDA's ``scalingStrategy.multipleScalersCalculation`` over the
    active triggers that answered (KEDA skips a failing one): ``max`` (default: the trigger with
    the longest queue), ``min``, ``avg`` or ``sum`` of ``min(value / target, max)``, then rounded
    up and capped at ``max``. It is the number of jobs KEDA aims to have running, before
    subtracting the ones already running.

Exit status: 0 when every external trigger answered, 1 when at least one failed (bad metadata or
a backend error; the others are still evaluated), 2 when the file cannot be read or holds no valid
ScaledObject/ScaledJob.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, TextIO

import yaml

from scaler.engine import Engine
from scaler.errors import ManifestError, ScalerError
from scaler.metadata import BACKEND_KEY, FROM_ENV_SUFFIX

log = logging.getLogger(__name__)

API_VERSION: Final = "keda.sh/v1alpha1"
SCALED_OBJECT: Final = "ScaledObject"
SCALED_JOB: Final = "ScaledJob"
EXTERNAL_TYPES: Final = ("external", "external-push")
DEFAULT_TIMEOUT: Final = 5.0
#: KEDA's default maxReplicaCount for both kinds
DEFAULT_MAX_REPLICAS: Final = 100

EXIT_OK: Final = 0
EXIT_TRIGGER_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2

#: metadata keys whose values are credentials; their values are scrubbed from every message
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential|sasl|cert", re.IGNORECASE)
_JOB_CALCULATIONS: Final = ("max", "min", "avg", "sum")

_ENV_NOTE: Final = (
    "xxxFromEnv keys are resolved from the environment of this check process "
    "(KEDA resolves them from the scale target's container)"
)


# -- arguments ---------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``FILE``, ``--json`` and ``--timeout`` to the ``check`` subcommand's parser."""
    parser.add_argument(
        "file",
        metavar="FILE",
        help=(
            "ScaledObject/ScaledJob manifest, multi-document YAML allowed ('-' reads stdin); "
            "xxxFromEnv keys are resolved from this process's environment"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per external trigger, instead of a table",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"longest wait for one trigger's backend (default {DEFAULT_TIMEOUT:g})",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds greater than 0")
    return value


# -- the manifest ------------------------------------------------------------------------------


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
    calculation: str = "max"


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """One entry of ``spec.triggers``; ``metadata`` as written (FromEnv keys unresolved)."""

    index: int
    type: str
    metadata: Mapping[str, str]
    authentication_ref: bool = False

    @property
    def external(self) -> bool:
        return self.type in EXTERNAL_TYPES


@dataclass(frozen=True, slots=True)
class ScaledResource:
    """A ScaledObject or ScaledJob and its triggers."""

    ref: ScaledRef
    replicas: Replicas
    triggers: tuple[TriggerSpec, ...]


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
    calculation = "max"
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
                if chosen not in _JOB_CALCULATIONS:
                    problems.append(
                        f"{where}: scalingStrategy.multipleScalersCalculation must be one of "
                        f"[{', '.join(_JOB_CALCULATIONS)}]"
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
    return ScaledResource(ref, Replicas(minimum, maximum, idle, calculation), tuple(triggers))


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
    return TriggerSpec(index, kind, strings, authentication_ref=auth)


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
        if key.endswith(FROM_ENV_SUFFIX) and len(key) > len(FROM_ENV_SUFFIX):
            found = environ.get(value)
            if found:
                resolved[key] = found
            else:
                dropped.append(key)
        else:
            resolved[key] = value
    return resolved, dropped


# -- evaluation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """What ``check`` found for one trigger; ``None`` fields are unknown (failed or skipped)."""

    ref: ScaledRef
    index: int
    type: str
    backend: str | None = None
    metric_name: str | None = None
    value: float | None = None
    target: float | None = None
    active: bool | None = None
    desired_replicas: int | None = None
    error: str | None = None
    skipped: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {
            "object": str(self.ref),
            "trigger": self.index,
            "backend": self.backend,
            "metricName": self.metric_name,
            "value": self.value,
            "target": self.target,
            "active": self.active,
            "desiredReplicas": self.desired_replicas,
            "error": self.error,
        }


async def _evaluate(
    engine: Engine,
    resource: ScaledResource,
    spec: TriggerSpec,
    environ: Mapping[str, str],
    budget: float,
) -> TriggerResult:
    if not spec.external:
        return TriggerResult(resource.ref, spec.index, spec.type, skipped=True)
    metadata, dropped = resolve_from_env(spec.metadata, environ)
    secrets = [v for k, v in metadata.items() if _SECRET_KEY.search(k)]
    notes = [
        f"{key}: variable {spec.metadata[key]!r} is unset or empty here; "
        "the key is dropped, as KEDA does"
        for key in dropped
    ]
    if spec.authentication_ref:
        notes.append(
            "authenticationRef is not forwarded to external scalers (only caCert, "
            "tlsClientCert and tlsClientKey are used, by KEDA itself); check ignores it"
        )
    raw_backend = metadata.get(BACKEND_KEY)
    result = TriggerResult(
        resource.ref,
        spec.index,
        spec.type,
        backend=raw_backend.strip() if raw_backend else None,
        notes=tuple(_scrub(n, secrets) for n in notes),
    )
    try:
        parsed = engine.parse(metadata)
        result = replace(result, backend=parsed.backend)
        metric_name, target = parsed.metric_name, float(parsed.target)
        result = replace(result, metric_name=metric_name, target=target)
        if not target > 0:
            raise ScalerError(f"target {target:g} is not greater than 0")
        evaluation = await engine.evaluate(parsed, budget=budget)
    except ScalerError as err:
        return replace(result, error=_scrub(str(err), secrets))
    except Exception as err:
        log.exception("check: trigger %d of %s failed unexpectedly", spec.index, resource.ref)
        return replace(result, error=f"internal error ({type(err).__name__}); see the log")
    value, active = float(evaluation.value), bool(evaluation.active)
    if resource.ref.kind == SCALED_JOB:
        desired = _job_replicas([(value, target, active)], resource.replicas)
    else:
        desired = _hpa_replicas([(value, target)], active, resource.replicas)
    return replace(result, value=value, active=active, desired_replicas=desired)


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message


def _milli(quantity: float) -> int:
    return round(quantity * 1000)


def _hpa_replicas(points: Sequence[tuple[float, float]], active: bool, bounds: Replicas) -> int:
    """A ScaledObject's replica count for ``(value, target)`` metrics (see the module doc)."""
    if not active and (bounds.min == 0 or bounds.idle is not None):
        return bounds.idle if bounds.idle is not None else 0
    wanted = 0
    for value, target in points:
        usage, per_replica = _milli(value), max(_milli(target), 1)
        wanted = max(wanted, -(-usage // per_replica))  # ceil in integers
    low = max(bounds.min, 1) if active else bounds.min
    return min(max(wanted, low), bounds.max)


def _job_replicas(points: Sequence[tuple[float, float, bool]], bounds: Replicas) -> int:
    """A ScaledJob's job count for ``(value, target, active)`` triggers (KEDA's arithmetic)."""
    metrics = [(value, min(value / target, bounds.max)) for value, target, on in points if on]
    queue, scale, active = 0.0, 0.0, False
    if bounds.calculation == "min":
        for length, wanted in metrics:
            if queue == 0 or length < queue:
                queue, scale, active = length, wanted, True
    elif bounds.calculation in ("avg", "sum"):
        if metrics:
            active = True
            scale = sum(wanted for _, wanted in metrics)
            if bounds.calculation == "avg":
                scale /= len(metrics)
    else:  # max: the trigger with the longest queue
        for length, wanted in metrics:
            if length > queue:
                queue, scale, active = length, wanted, True
    jobs = math.ceil(min(scale, bounds.max)) if active else 0
    return max(jobs, bounds.min)


@dataclass(frozen=True, slots=True)
class ObjectResult:
    """The object-level outcome over its external triggers."""

    active: bool | None
    desired_replicas: int | None
    explanation: str


def _object_result(resource: ScaledResource, results: Sequence[TriggerResult]) -> ObjectResult:
    external = [r for r in results if not r.skipped]
    answered = [r for r in external if r.error is None]
    failed = [r.index for r in external if r.error is not None]
    skipped = len(results) - len(external)
    ignoring = f"; {skipped} skipped trigger(s) not included" if skipped else ""
    active = any(bool(r.active) for r in answered)
    if resource.ref.kind == SCALED_JOB:
        points = [
            (r.value, r.target, bool(r.active))
            for r in answered
            if r.value is not None and r.target is not None
        ]
        explanation = f"multipleScalersCalculation {resource.replicas.calculation}"
        if failed:
            explanation += f"; failed trigger(s) {_indexes(failed)} left out, as KEDA does"
        return ObjectResult(
            active or resource.replicas.min > 0,
            _job_replicas(points, resource.replicas),
            explanation + ignoring,
        )
    if failed:
        return ObjectResult(
            active if active else None,
            None,
            f"not computed: trigger(s) {_indexes(failed)} failed, and the HPA's answer then "
            f"depends on the current replica count and spec.fallback{ignoring}",
        )
    points2 = [(r.value, r.target) for r in answered if r.value is not None and r.target]
    return ObjectResult(
        active,
        _hpa_replicas(points2, active, resource.replicas),
        f"HPA takes the max over triggers; active if any trigger is active{ignoring}",
    )


def _indexes(indexes: Sequence[int]) -> str:
    return ", ".join(str(i) for i in indexes)


# -- the command -------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace, engine: Engine, environ: Mapping[str, str], out: TextIO
) -> int:
    """Check every external trigger of ``args.file`` and print the results to ``out``.

    :param args: parsed with :func:`add_arguments` (``file``, ``json``, ``timeout``)
    :param engine: built and closed by the caller
    :param environ: where ``xxxFromEnv`` names are resolved (the CLI passes its own environment)
    :param out: the table or the JSON list; errors about the file itself go to ``sys.stderr``
    :returns: 0 if every external trigger answered, 1 if any failed, 2 if the file is unusable
    """
    try:
        text = await asyncio.to_thread(_read, args.file)
        resources = load_manifest(text)
    except (OSError, UnicodeDecodeError) as err:
        _stderr(f"check: cannot read {args.file}: {_os_problem(err)}")
        return EXIT_BAD_INPUT
    except ManifestError as err:
        for problem in err.problems:
            _stderr(f"check: {args.file}: {problem}")
        return EXIT_BAD_INPUT

    timeout = float(getattr(args, "timeout", DEFAULT_TIMEOUT))
    jobs = [
        _evaluate(engine, resource, spec, environ, timeout)
        for resource in resources
        for spec in resource.triggers
    ]
    flat = await asyncio.gather(*jobs)
    grouped: list[tuple[ScaledResource, list[TriggerResult]]] = []
    position = 0
    for resource in resources:
        count = len(resource.triggers)
        grouped.append((resource, list(flat[position : position + count])))
        position += count

    uses_env = any(
        key.endswith(FROM_ENV_SUFFIX) for r in resources for t in r.triggers for key in t.metadata
    )
    if args.json:
        out.write(json.dumps([r.as_json() for r in flat if not r.skipped], indent=2) + "\n")
        for resource, results in grouped:
            for result in results:
                for note in result.notes:
                    _stderr(f"check: note: {resource.ref} trigger {result.index}: {note}")
        if uses_env:
            _stderr(f"check: note: {_ENV_NOTE}")
    else:
        _print_table(grouped, out)
        if uses_env:
            out.write(f"note: {_ENV_NOTE}\n")
    failed = any(r.error is not None for r in flat)
    return EXIT_TRIGGER_FAILED if failed else EXIT_OK


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _os_problem(err: OSError | UnicodeDecodeError) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "not UTF-8 text"
    return err.strerror or type(err).__name__


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


_HEADER: Final = ("TRIGGER", "TYPE", "BACKEND", "METRIC", "VALUE", "TARGET", "ACTIVE", "REPLICAS")


def _print_table(
    grouped: Sequence[tuple[ScaledResource, Sequence[TriggerResult]]], out: TextIO
) -> None:
    for number, (resource, results) in enumerate(grouped):
        if number:
            out.write("\n")
        bounds = resource.replicas
        limits = f"replicas {bounds.min}..{bounds.max}"
        if bounds.idle is not None:
            limits += f", idle {bounds.idle}"
        out.write(f"{resource.ref} ({limits})\n")
        rows = [_HEADER] + [_row(r) for r in results]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
        for row, result in zip(rows, [None, *results], strict=True):
            cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            tail = ""
            if result is not None and result.error is not None:
                tail = f"  error: {result.error}"
            elif result is not None and result.skipped:
                tail = "  skipped: not an external trigger"
            out.write(f"  {cells}{tail}".rstrip() + "\n")
        for result in results:
            for note in result.notes:
                out.write(f"  note: trigger {result.index}: {note}\n")
        if sum(1 for r in results if not r.skipped) > 1:
            outcome = _object_result(resource, results)
            state = {True: "active", False: "inactive", None: "activity unknown"}[outcome.active]
            count = (
                "replicas unknown"
                if outcome.desired_replicas is None
                else f"{outcome.desired_replicas} "
                + ("jobs" if resource.ref.kind == SCALED_JOB else "replicas")
            )
            out.write(f"  => {resource.ref.kind}: {state}, {count} ({outcome.explanation})\n")


def _row(result: TriggerResult) -> tuple[str, ...]:
    return (
        str(result.index),
        result.type,
        result.backend or "-",
        result.metric_name or "-",
        _number(result.value),
        _number(result.target),
        "-" if result.active is None else ("yes" if result.active else "no"),
        "-" if result.desired_replicas is None else str(result.desired_replicas),
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
