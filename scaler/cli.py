"""The ``keda-queue-scaler`` command: ``serve``, ``check FILE``, ``simulate FILE``,
``migrate MANIFEST``, ``status``, ``version``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from scaler import __version__, logs
from scaler.app import ScalerApp, build_engine
from scaler.backends import quiet_loggers
from scaler.errors import SettingsError
from scaler.settings import Settings, environment
from scaler.tools import check, migrate
from scaler.tools import status as status_command
from scaler.tools.simulate import command as simulate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keda-queue-scaler",
        description="KEDA external scaler for Redis lists, Kafka consumer lag and RabbitMQ queues.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the KEDA external scaler gRPC API")
    Settings.add_arguments(serve)
    checker = commands.add_parser(
        "check",
        help="evaluate the external triggers of a ScaledObject/ScaledJob manifest as KEDA would",
    )
    check.add_arguments(checker)
    simulator = commands.add_parser(
        "simulate",
        help="drive a running scaler as KEDA and the HPA would; print the timeline",
    )
    simulate.add_arguments(simulator)
    status = commands.add_parser(
        "status",
        help="print a running scaler's status page: its triggers, values, errors and resources",
    )
    status_command.add_arguments(status)
    migrator = commands.add_parser(
        "migrate",
        help="rewrite KEDA's built-in redis, kafka and rabbitmq triggers as this scaler's "
        "external triggers",
    )
    migrate.add_arguments(migrator)
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        sys.stdout.write(f"keda-queue-scaler {__version__}\n")
        return 0
    if args.command == "status":
        return status_command.run(args, sys.stdout, sys.stderr)
    if args.command == "migrate":
        return migrate.run(args, sys.stdin, sys.stdout, sys.stderr)
    if args.command == "simulate":
        logs.configure("text", "WARNING", quiet_loggers())
        return asyncio.run(simulate.run(args, environment(), sys.stdout))
    try:
        settings = Settings.load(vars(args))
    except SettingsError as err:
        sys.stderr.write(f"keda-queue-scaler: {err}\n")
        return 2
    try:
        if args.command == "serve":
            logs.configure(settings.log_format, settings.log_level, quiet_loggers())
            asyncio.run(_serve(settings))
            return 0
        logs.configure(settings.log_format, "WARNING", quiet_loggers())
        return asyncio.run(_check(args, settings))
    except SettingsError as err:
        sys.stderr.write(f"keda-queue-scaler: {err}\n")
        return 2


async def _serve(settings: Settings) -> None:
    await ScalerApp(settings).run()


async def _check(args: argparse.Namespace, settings: Settings) -> int:
    # check's --timeout bounds each read; the serve-time backend timeout would cap it otherwise
    engine = build_engine(replace(settings, backend_timeout=args.timeout))
    try:
        return await check.run(args, engine, environment(), sys.stdout)
    finally:
        await engine.aclose()


if __name__ == "__main__":
    sys.exit(main())
