"""What the two runs of ``simulate`` (a ScaledObject's, a ScaledJob's) share: the exit statuses,
messages on stderr, the ``ScaledObjectRef`` KEDA sends for each trigger, and the client of the
running scaler.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable, Mapping
from typing import Final

from scaler.tools import remote
from scaler.tools.manifest import ScaledRef, dropped_note, resolve_from_env
from scaler.tools.simulate.spec import SimTrigger

EXIT_OK: Final = 0
EXIT_READ_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2


def object_refs(
    ref: ScaledRef, triggers: Iterable[SimTrigger], environ: Mapping[str, str]
) -> dict[int, remote.ObjectRef]:
    """Each trigger's ``ScaledObjectRef``, its ``xxxFromEnv`` keys resolved from ``environ`` as
    KEDA resolves them from the workload's environment (a note for each key dropped)."""
    refs: dict[int, remote.ObjectRef] = {}
    for trigger in triggers:
        metadata, dropped = resolve_from_env(trigger.metadata, environ)
        for key in dropped:
            note = dropped_note(key, trigger.metadata[key])
            stderr(f"simulate: note: trigger {trigger.index}: {note}")
        refs[trigger.index] = remote.ObjectRef(ref.name, ref.namespace, metadata)
    return refs


def bad_input(problems: Iterable[str]) -> int:
    """Print each problem; the status of an unusable manifest or option."""
    for problem in problems:
        stderr(f"simulate: {problem}")
    return EXIT_BAD_INPUT


def stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


async def open_client(
    stack: contextlib.AsyncExitStack, args: argparse.Namespace, tls: remote.TlsConfig | None
) -> remote.ScalerClient | None:
    """The client of the scaler at ``--address``, closed with ``stack``; None (said on stderr)
    when a TLS file cannot be read."""
    try:
        return await stack.enter_async_context(
            remote.ScalerClient(args.address, tls=tls, timeout=args.timeout)
        )
    except OSError as err:
        stderr(f"simulate: cannot read {err.filename}: {err.strerror}")
        return None
