"""Child processes with their output in a log file, pinned to a core if asked, stopped by pid."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from pathlib import Path

from bench.harness.paths import REPO_ROOT


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    """``argv`` run on core ``cpu`` only (``taskset -c``); unchanged for None."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


class ChildProcess:
    """One child process, run from the repository root, its stdout and stderr in ``log``."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls,
        name: str,
        argv: list[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
        stdout: bool = False,
    ) -> ChildProcess:
        """Start ``argv``.

        :param stdin: give the child a pipe on stdin (else /dev/null)
        :param stdout: keep stdout as a pipe for the caller to read (else it goes to the log)
        """
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as handle:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=REPO_ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout else handle,
                stderr=handle,
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log ("" if there is none)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                await self.kill()
        return self.process.returncode

    async def kill(self) -> None:
        """SIGKILL if still running, and wait for it."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
