"""``keda-queue-scaler check FILE``: evaluate a manifest's external triggers as KEDA would.

This module owns the ``check`` subcommand: its arguments, emulating what KEDA sends the scaler
for each trigger, evaluating the triggers through the :class:`~scaler.engine.Engine`, and the
table and JSON output. The manifest comes from :mod:`scaler.tools.manifest` and every replica
count from :mod:`scaler.tools.replicas`. The CLI builds and closes the engine; :func:`run` only
uses it.

What is evaluated
    Triggers of type ``external`` and ``external-push``; other types are listed as skipped.

What the scaler receives
    The trigger's ``metadata`` as it is, except ``xxxFromEnv`` keys: KEDA reads the named
    environment variable of the scale target's container and forwards its *value* under the same
    key (``passwordFromEnv: <value>``), dropping the key when the variable is unset or empty.
    ``check`` has no workload, so it resolves those names from **its own environment**. Secret
    values are never printed (error messages are scrubbed of them too).

Replica arithmetic (``desiredReplicas``)
    Per trigger the result is computed as if the trigger were alone on the object; with several
    external triggers the object-level result is printed as well: a ScaledObject's HPA takes the
    maximum over its metrics and KEDA calls the object active if any trigger is active. The rules
    are :mod:`scaler.tools.replicas`', on the milli-unit quantities KEDA makes of the value and
    the target. The HPA's 10% tolerance, its stabilisation windows and ``metricType: Value``
    depend on the current replica count, which ``check`` does not know; they are not applied.
    When a trigger failed the object-level count of a ScaledObject is not computed (the HPA's
    answer then depends on the current replica count and on ``fallback``); a ScaledJob leaves
    the failed trigger out, as KEDA does.

Exit status: 0 when every external trigger answered, 1 when at least one failed (bad metadata or
a backend error; the others are still evaluated), 2 when the file cannot be read or holds no valid
ScaledObject/ScaledJob.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final, TextIO

from scaler.engine import Engine
from scaler.errors import ManifestError, ScalerError
from scaler.metadata import BACKEND_KEY, FROM_ENV_SUFFIX
from scaler.tools.arguments import positive_seconds
from scaler.tools.check_report import TriggerResult, milli_point, print_table
from scaler.tools.manifest import (
    SCALED_JOB,
    ScaledResource,
    TriggerSpec,
    dropped_note,
    read_manifest,
    resolve_from_env,
)
from scaler.tools.replicas import scaled_job_replicas, scaled_object_replicas

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 5.0

EXIT_OK: Final = 0
EXIT_TRIGGER_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2

#: metadata keys whose values are credentials; their values are scrubbed from every message

_ENV_NOTE: Final = (
    "xxxFromEnv keys are resolved from the environment of this check process "
    "(KEDA resolves them from the scale target's container)"
)


# -- arguments ---------------------------------------------------------------------------------


_AGE_NOTE: Final = (
    "the metric is an age in seconds, a quantity of the whole queue: with metricType {} the HPA "
    "asks for ceil(age / target) replicas whatever runs now; set metricType: Value to scale "
    "in proportion (ceil(replicas x age / target))"
)


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
        type=positive_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"longest wait for one trigger's backend (default {DEFAULT_TIMEOUT:g})",
    )


# -- evaluation --------------------------------------------------------------------------------


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
    secrets = _secret_values(engine, metadata)
    notes = [dropped_note(key, spec.metadata[key]) for key in dropped]
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
        metric_type=spec.metric_type,
    )
    result, age = await _ask_engine(engine, metadata, budget, result, secrets)
    if age and spec.metric_type != "Value":
        result = replace(result, notes=(*result.notes, _AGE_NOTE.format(spec.metric_type)))
    if result.error is not None:
        return result
    active = bool(result.active)
    if resource.ref.kind == SCALED_JOB:
        desired = scaled_job_replicas([(*milli_point(result), active)], resource.replicas)
    else:
        desired = scaled_object_replicas([milli_point(result)], active, resource.replicas)
    return replace(result, desired_replicas=desired)


async def _ask_engine(
    engine: Engine,
    metadata: Mapping[str, str],
    budget: float,
    result: TriggerResult,
    secrets: Sequence[str],
) -> tuple[TriggerResult, bool]:
    """The result with what the engine answered, and whether the metric is an age."""
    # Every use check makes of the engine is here: parse the metadata, then one bounded read.
    # What was learnt before a failure (backend, metric name, target) stays in the result.
    age = False
    try:
        parsed = engine.parse(metadata)
        age = parsed.trigger.measures_age
        target = float(parsed.target)
        result = replace(
            result, backend=parsed.backend, metric_name=parsed.metric_name, target=target
        )
        if not target > 0:
            raise ScalerError(f"target {target:g} is not greater than 0")
        measurement = await engine.measure(parsed, budget=budget)
        evaluation = engine.assess(parsed, measurement)
    except ScalerError as err:
        return replace(result, error=_scrub(str(err), secrets)), age
    except Exception as err:
        log.exception("check: trigger %d of %s failed unexpectedly", result.index, result.ref)
        return replace(result, error=f"internal error ({type(err).__name__}); see the log"), age
    return replace(
        result,
        value=float(evaluation.value),
        active=bool(evaluation.active),
        facts=measurement.facts,
        items=measurement.items,
    ), age


def _secret_values(engine: Engine, metadata: Mapping[str, str]) -> list[str]:
    """Values of the keys the trigger's backend declares secret (every backend's, when the
    metadata names none it knows), so no message of check repeats one."""
    named = engine.backends.get(metadata.get(BACKEND_KEY, "").strip())
    backends = [named] if named is not None else list(engine.backends.values())
    keys = frozenset().union(*(backend.secret_keys() for backend in backends))
    return [value for key, value in metadata.items() if key in keys]


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            message = message.replace(secret, "***")
    return message


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
        resources = await read_manifest(args.file)
    except ManifestError as err:
        for problem in err.problems:
            _stderr(f"check: {problem}")
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
        print_table(grouped, out)
        if uses_env:
            out.write(f"note: {_ENV_NOTE}\n")
    failed = any(r.error is not None for r in flat)
    return EXIT_TRIGGER_FAILED if failed else EXIT_OK


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
