"""The shared test brokers of ``scripts/brokers.sh``: their addresses, stopping and starting one.

A benchmark or a test that takes a broker down and brings it back goes through the same script
a developer uses, so the broker is started the same way every time.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from bench.harness.paths import REPO_ROOT

#: brokers.sh waits up to 90 s for a start and about 30 s (+10) for a stop
COMMAND_TIMEOUT = 150.0


def argv(action: str, broker: str) -> list[str]:
    """The command line of ``scripts/brokers.sh ACTION BROKER``."""
    return [str(REPO_ROOT / "scripts" / "brokers.sh"), action, broker]


async def run(action: str, broker: str, env: Mapping[str, str] | None = None) -> None:
    """Run ``brokers.sh ACTION BROKER``; its output is in the error if it fails."""
    process = await asyncio.create_subprocess_exec(
        *argv(action, broker),
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(
            f"scripts/brokers.sh {action} {broker} exited with {process.returncode}:\n"
            + output.decode(errors="replace")
        )


def script_env() -> dict[str, str]:
    """The ``SCALER_TEST_*`` variables ``scripts/brokers.sh env`` prints for the running brokers."""
    out = subprocess.run(
        [str(REPO_ROOT / "scripts" / "brokers.sh"), "env"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = [line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line]
    return {name: value for name, value in pairs}


#: where ``scripts/brokers.sh`` starts the brokers unless told otherwise
DEFAULT_ADDRESSES = {
    "SCALER_TEST_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "SCALER_TEST_AMQP_URL": "amqp://kqs:kqs-secret@127.0.0.1:15673/%2F",
    "SCALER_TEST_RABBITMQ_HTTP": "http://kqs:kqs-secret@127.0.0.1:15674",
    "SCALER_TEST_RABBITMQ_PROMETHEUS": "http://127.0.0.1:15675/metrics",
}


def address(variable: str) -> str:
    """The broker address in ``variable`` (``eval "$(scripts/brokers.sh env)"`` sets them), else
    the script's default."""
    return os.environ.get(variable) or DEFAULT_ADDRESSES[variable]


@dataclass(frozen=True)
class BrokerAddresses:
    """Where a benchmark reaches Kafka and RabbitMQ (its Redis it starts itself)."""

    kafka: str
    amqp: str
    rabbit_http: str
    rabbit_prometheus: str
