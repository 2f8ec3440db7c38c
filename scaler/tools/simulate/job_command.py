"""``simulate`` for a ScaledJob: its options, and one run from the manifest to the output.

This module owns the ScaledJob's run of ``keda-queue-scaler simulate``: take the ScaledJob's spec
(:mod:`.job_spec`), resolve its ``xxxFromEnv`` keys, connect to the scaler, build the job model
(:mod:`.jobs`) and drive it (:mod:`.job_driver`), and print or draw the timeline
(:mod:`.job_output`). :mod:`.command` parses the arguments, reads the manifest and chooses the
object; the options shared with a ScaledObject's run (address, speed, duration, TLS, output)
are its.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Mapping
from typing import TextIO

from scaler.errors import RemoteError
from scaler.tools import remote
from scaler.tools.arguments import non_negative_number
from scaler.tools.manifest import ScaledResource
from scaler.tools.simulate.driver import Clock, CompressedClock
from scaler.tools.simulate.job_driver import JobSource, drive_jobs
from scaler.tools.simulate.job_output import (
    JobTable,
    describe_job,
    job_json_rows,
    write_job_plot,
)
from scaler.tools.simulate.job_spec import load_job
from scaler.tools.simulate.jobs import DEFAULT_JOB_DURATION, JobModel, JobRow
from scaler.tools.simulate.runs import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_READ_FAILED,
    object_refs,
    open_client,
    stderr,
)

_OPTIONS = {"job_duration": "--job-duration", "job_pending": "--job-pending", "drain": "--drain"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ScaledJob-only options of ``simulate`` to ``parser``."""
    jobs = parser.add_argument_group("a ScaledJob's jobs")
    life = jobs.add_mutually_exclusive_group()
    life.add_argument(
        "--job-duration",
        type=non_negative_number,
        metavar="SECONDS",
        help=f"how long each job runs before it succeeds (default {DEFAULT_JOB_DURATION:g})",
    )
    life.add_argument(
        "--drain",
        action="store_true",
        default=None,
        help="jobs run until a poll reads the queue empty: the consumer you run drains it",
    )
    jobs.add_argument(
        "--job-pending",
        type=non_negative_number,
        metavar="SECONDS",
        help="how long a created job is pending before its pod runs (default 0)",
    )


def given(args: argparse.Namespace) -> list[str]:
    """The ScaledJob-only options given on the command line."""
    return [flag for dest, flag in _OPTIONS.items() if getattr(args, dest, None) is not None]


async def run(
    args: argparse.Namespace,
    resource: ScaledResource,
    environ: Mapping[str, str],
    out: TextIO,
    *,
    clock: Clock | None,
    tls: remote.TlsConfig | None,
) -> int:
    """Simulate the ScaledJob ``resource`` against the scaler at ``args.address``.

    :returns: :func:`scaler.tools.simulate.command.run`'s statuses
    :raises scaler.errors.ManifestError: the ScaledJob cannot be simulated
    """
    spec = load_job(resource)
    for note in spec.notes:
        stderr(f"simulate: note: {note}")
    job_duration: float | None = None  # --drain
    if not args.drain:
        job_duration = DEFAULT_JOB_DURATION if args.job_duration is None else args.job_duration
    pending = args.job_pending or 0.0
    refs = object_refs(spec.ref, spec.triggers, environ)
    clock = clock or CompressedClock(args.speed)
    title = describe_job(spec, job_duration, pending, args.duration, args.speed)
    rows: list[JobRow] = []
    async with contextlib.AsyncExitStack() as stack:
        client = await open_client(stack, args, tls)
        if client is None:
            return EXIT_BAD_INPUT
        source = JobSource(client, refs)
        try:
            keys = await source.metric_names([t.index for t in spec.triggers])
        except RemoteError as err:
            stderr(
                f"simulate: {args.address}: {err}: KEDA would leave this trigger out of every poll"
            )
            return EXIT_READ_FAILED
        model = JobModel(spec, duration=job_duration, pending=pending, running=args.replicas or 0)
        table = None if args.json else JobTable(out, keys)
        if table is not None:
            table.header(title)

        def emit(row: JobRow) -> None:
            rows.append(row)
            if table is not None:
                table.row(row)

        late = await drive_jobs(model, source, clock, args.duration, emit)

    if args.json:
        out.write(job_json_rows(rows))
    if late > spec.polling_interval / 2:
        stderr(
            f"simulate: note: the scaler answered slower than --speed {args.speed:g} allows: "
            f"polls ran up to {late:.1f} simulated seconds late"
        )
    if args.plot:
        try:
            await asyncio.to_thread(
                write_job_plot,
                args.plot,
                rows,
                keys,
                model.occupancy(args.duration),
                title=title,
                duration=args.duration,
            )
        except OSError as err:
            stderr(f"simulate: cannot write {args.plot}: {err.strerror}")
            return EXIT_BAD_INPUT
    return EXIT_READ_FAILED if source.failures else EXIT_OK
