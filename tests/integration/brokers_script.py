"""``scripts/brokers.sh start|stop BROKER`` run from a test, bounded in time.

The broker controls of the Kafka and RabbitMQ fixtures take their shared broker down and bring it
back through the same script a developer uses, so the test broker is started the same way.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: brokers.sh waits up to 90 s for a start and about 30 s (+10) for a stop
COMMAND_TIMEOUT = 150.0


def argv(action: str, broker: str) -> list[str]:
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
