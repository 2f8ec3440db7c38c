"""The ``simulate`` command: its arguments, and one run from the manifest to the output.

This module owns what ``keda-queue-scaler simulate`` does end to end: read the manifest once
(:mod:`scaler.tools.manifest`), choose the object, take the ScaledObject's spec (:mod:`.spec`),
resolve its ``xxxFromEnv`` keys from this process's environment as KEDA would from the
workload's, connect to the scaler, build the model and drive it (:mod:`.driver`), and print or
draw the timeline (:mod:`.output`). A ScaledJob's run is :mod:`.job_command`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Mapping
from typing import Final, TextIO

from scaler.errors import ManifestError, RemoteError
from scaler.tools import remote
from scaler.tools.arguments import non_negative_integer, non_negative_number, positive_number
from scaler.tools.manifest import SCALED_JOB, read_manifest
from scaler.tools.simulate import job_command
from scaler.tools.simulate.driver import DEFAULT_SPEED, Clock, CompressedClock, RemoteSource, drive
from scaler.tools.simulate.hpa import (
    DEFAULT_DOWNSCALE_STABILIZATION,
    DEFAULT_HPA_SYNC,
    DEFAULT_HPA_TOLERANCE,
    HpaSettings,
)
from scaler.tools.simulate.model import Row, ScaleModel
from scaler.tools.simulate.output import Table, describe, json_rows, plot_available, write_plot
from scaler.tools.simulate.runs import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_READ_FAILED,
    bad_input,
    object_refs,
    open_client,
    stderr,
)
from scaler.tools.simulate.spec import choose, load_object

DEFAULT_DURATION: Final = 600.0
DEFAULT_ADDRESS: Final = "localhost:9090"

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_READ_FAILED", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``MANIFEST`` and the options of the ``simulate`` subcommand to ``parser``."""
    parser.add_argument(
        "file",
        metavar="MANIFEST",
        help="the ScaledObject or ScaledJob to simulate ('-' reads stdin); xxxFromEnv keys are "
        "resolved from this process's environment",
    )
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"host:port of the running scaler's gRPC port (default {DEFAULT_ADDRESS}); "
        "the triggers' scalerAddress is not used",
    )
    parser.add_argument(
        "--name", help="which ScaledObject or ScaledJob, when the manifest holds several"
    )
    parser.add_argument(
        "--speed",
        type=positive_number,
        default=DEFAULT_SPEED,
        help="simulated seconds per real second: 30 runs a 30 s pollingInterval every second "
        f"(default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--duration",
        type=positive_number,
        default=DEFAULT_DURATION,
        metavar="SECONDS",
        help=f"simulated time to run (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--replicas",
        type=non_negative_integer,
        metavar="N",
        help="the scale target's replicas at the start "
        "(default: idleReplicaCount if set, else minReplicaCount); "
        "for a ScaledJob, the jobs already running (default 0)",
    )
    parser.add_argument(
        "--hpa-sync",
        type=positive_number,
        default=DEFAULT_HPA_SYNC,
        metavar="SECONDS",
        help="the HPA's sync period, for a ScaledObject (kube-controller-manager "
        f"--horizontal-pod-autoscaler-sync-period, default {DEFAULT_HPA_SYNC:g})",
    )
    parser.add_argument(
        "--hpa-tolerance",
        type=non_negative_number,
        default=DEFAULT_HPA_TOLERANCE,
        metavar="RATIO",
        help="the HPA's tolerance (--horizontal-pod-autoscaler-tolerance, "
        f"default {DEFAULT_HPA_TOLERANCE:g})",
    )
    parser.add_argument(
        "--hpa-downscale-stabilization",
        type=non_negative_integer,
        default=DEFAULT_DOWNSCALE_STABILIZATION,
        metavar="SECONDS",
        help="scale-down stabilization window when the behavior does not set one "
        "(--horizontal-pod-autoscaler-downscale-stabilization, "
        f"default {DEFAULT_DOWNSCALE_STABILIZATION})",
    )
    parser.add_argument("--json", action="store_true", help="print the timeline as a JSON list")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also write a chart of values and replicas or jobs (needs the 'plot' extra: "
        "matplotlib)",
    )
    job_command.add_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=positive_number,
        default=remote.DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"deadline of each call to the scaler (default {remote.DEFAULT_TIMEOUT:g})",
    )
    # dest names of their own: `serve`'s Settings reads tls_cert/tls_key from a namespace
    tls = parser.add_argument_group("TLS to the scaler (plaintext without these)")
    tls.add_argument(
        "--tls",
        dest="client_tls",
        action="store_true",
        help="use TLS, trusting the system's CAs (unless --tls-ca)",
    )
    tls.add_argument(
        "--tls-ca",
        dest="client_tls_ca",
        metavar="FILE",
        help="PEM CA that signed the scaler's cert",
    )
    tls.add_argument(
        "--tls-cert", dest="client_tls_cert", metavar="FILE", help="PEM client cert, for mTLS"
    )
    tls.add_argument("--tls-key", dest="client_tls_key", metavar="FILE", help="its PEM key")
    tls.add_argument(
        "--tls-server-name",
        dest="client_tls_server_name",
        metavar="NAME",
        help="name to verify in the scaler's certificate (default: the host of --address)",
    )


async def run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO,
    *,
    clock: Clock | None = None,
) -> int:
    """Simulate ``args.file``'s ScaledObject or ScaledJob against the scaler at ``args.address``.

    :param args: parsed with :func:`add_arguments`
    :param environ: where ``xxxFromEnv`` names are resolved (the CLI passes its own environment)
    :param out: the table (row by row, as events happen) or, with ``--json``, the JSON list;
        problems and notes go to ``sys.stderr``
    :param clock: replaces the real clock compressed by ``--speed`` (tests)
    :returns: 0 when every read succeeded, 1 when the scaler could not be reached, refused a
        trigger or failed a read during the run (the timeline is still printed), 2 when the
        manifest, the options or the plot are unusable
    """
    if args.plot and not plot_available():
        stderr(
            "simulate: --plot needs matplotlib, which is not installed: "
            "pip install 'keda-queue-scaler[plot]'"
        )
        return EXIT_BAD_INPUT
    tls = _tls(args)
    if isinstance(tls, str):
        stderr(f"simulate: {tls}")
        return EXIT_BAD_INPUT
    try:
        resources = await read_manifest(args.file)
    except ManifestError as err:
        return bad_input(err.problems)
    try:
        resource = choose(resources, args.name)
        if resource.ref.kind == SCALED_JOB:
            return await job_command.run(args, resource, environ, out, clock=clock, tls=tls)
        job_options = job_command.given(args)
        if job_options:
            raise ManifestError([f"{', '.join(job_options)}: only for a ScaledJob"])
        spec = load_object([resource])
    except ManifestError as err:
        return bad_input(f"{args.file}: {problem}" for problem in err.problems)

    refs = object_refs(spec.ref, spec.triggers, environ)

    settings = HpaSettings(args.hpa_sync, args.hpa_tolerance, args.hpa_downscale_stabilization)
    clock = clock or CompressedClock(args.speed)
    rows: list[Row] = []
    async with contextlib.AsyncExitStack() as stack:
        client = await open_client(stack, args, tls)
        if client is None:
            return EXIT_BAD_INPUT
        source = RemoteSource(client, refs)
        try:
            metrics = await source.hpa_metrics(spec)
        except RemoteError as err:
            stderr(f"simulate: {args.address}: KEDA could not build the HPA: {err}")
            return EXIT_READ_FAILED
        bad = [m.key for m in metrics if m.target <= 0]
        if bad:
            stderr(f"simulate: a target of 0 cannot be simulated ({', '.join(bad)})")
            return EXIT_BAD_INPUT
        model = ScaleModel(spec, metrics, settings=settings, replicas=args.replicas)
        initial = model.replicas
        table = None if args.json else Table(out, [m.key for m in metrics])
        if table is not None:
            table.header(describe(spec, settings, args.duration, args.speed))

        def emit(row: Row) -> None:
            rows.append(row)
            if table is not None:
                table.row(row)

        late = await drive(model, source, clock, args.duration, emit)

    if args.json:
        out.write(json_rows(rows))
    if late > min(spec.polling_interval, settings.sync_period) / 2:
        stderr(
            f"simulate: note: the scaler answered slower than --speed {args.speed:g} allows: "
            f"events ran up to {late:.1f} simulated seconds late"
        )
    if args.plot:
        try:
            await asyncio.to_thread(
                write_plot,
                args.plot,
                rows,
                metrics,
                title=describe(spec, settings, args.duration, args.speed),
                duration=args.duration,
                initial=initial,
            )
        except OSError as err:
            stderr(f"simulate: cannot write {args.plot}: {err.strerror}")
            return EXIT_BAD_INPUT
    return EXIT_READ_FAILED if source.failures else EXIT_OK


def _tls(args: argparse.Namespace) -> remote.TlsConfig | str | None:
    ca, cert, key = args.client_tls_ca, args.client_tls_cert, args.client_tls_key
    server_name = args.client_tls_server_name
    if not (args.client_tls or ca or cert or key or server_name):
        return None
    if (cert is None) != (key is None):
        return "--tls-cert and --tls-key go together"
    return remote.TlsConfig(ca, cert, key, server_name)
