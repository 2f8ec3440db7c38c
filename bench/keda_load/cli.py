"""The command line of ``python -m bench.keda_load``: scenarios, modes, sizes, broker addresses."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence

import bench.keda_load
from bench.harness.brokers import address
from bench.harness.paths import RESULTS
from bench.keda_load.lanes.activation import BACKENDS
from bench.keda_load.runner import run
from bench.keda_load.scenarios import SCENARIOS
from bench.keda_load.sizes import Sizes


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)}")
        return values

    return parse


def parser() -> argparse.ArgumentParser:
    description = (bench.keda_load.__doc__ or "").splitlines()[0]
    p = argparse.ArgumentParser(
        prog="python -m bench.keda_load",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    p.add_argument("--scenarios", type=_csv(tuple(SCENARIOS)), default=list(SCENARIOS))
    p.add_argument("--modes", type=_csv(("normal", "naive")), default=["normal", "naive"])
    p.add_argument("--activation-modes", type=_csv(("normal", "naive")), default=["normal"])
    p.add_argument(
        "--backends", type=_csv(BACKENDS), default=list(BACKENDS), help="activation backends"
    )
    p.add_argument("--output", default=str(RESULTS / "keda_load.json"))
    p.add_argument("--ghz", help="ghz binary (default: scripts/ghz.sh builds and finds it)")
    p.add_argument("--redis-url", help="measure this Redis instead of a private redis-server")
    p.add_argument("--kafka-bootstrap", default=address("SCALER_TEST_KAFKA_BOOTSTRAP"))
    p.add_argument("--amqp-url", default=address("SCALER_TEST_AMQP_URL"))
    p.add_argument("--rabbitmq-http", default=address("SCALER_TEST_RABBITMQ_HTTP"))
    p.add_argument("--rabbitmq-prometheus", default=address("SCALER_TEST_RABBITMQ_PROMETHEUS"))
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile the GetMetrics path: bench.handler_profile (cProfile), py-spy if found",
    )
    p.add_argument("--py-spy", help="py-spy binary for --profile (default: on PATH)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed too")
    p.add_argument("--verbose", action="store_true", help="tracebacks of failed scenarios")
    sizes = p.add_argument_group("sizes (default: full run; --quick shrinks them)")
    for name, value in vars(Sizes()).items():
        sizes.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=None, help=f"default {value}"
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(run(args))
