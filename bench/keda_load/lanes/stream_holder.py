"""Hold S StreamIsActive streams open against a scaler, as KEDA does for ``external-push``.

    python -m bench.keda_load.lanes.stream_holder --target 127.0.0.1:9090 --refs refs.json

Both ends live here: the program (a separate process, so that holding streams does not load the
benchmark's own event loop) and :class:`StreamHolder`, the benchmark's handle on it.

``refs.json`` is a JSON list of ScaledObjectRefs (``{"name", "namespace", "scalerMetadata"}``);
one stream is opened per entry, all multiplexed on one channel (KEDA shares one connection per
scaler address). Protocol with the parent process, one line each on stdout:

* ``READY <initial> <streams> <seconds>`` once every stream has received its initial state,
  or ``PARTIAL <initial> <streams> <seconds> <json>`` if only ``initial`` of them did within
  ``--timeout`` seconds (``json``: streams that ended early, by status code); the process
  keeps every stream open either way, so the parent can still measure, and exits on EOF;
* after stdin reaches EOF (or SIGTERM), the streams are cancelled and a final line
  ``DONE <json>`` reports counts: streams opened, initial states received, later messages
  (``true`` activations), and streams that ended early by status code.

Started pinned to the load-generator core by the parent; it is not the thing measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from bench.harness.processes import ChildProcess, pinned
from scaler.proto import externalscaler_pb2 as pb
from scaler.proto import externalscaler_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    # only the parent's signatures name it; the program itself never loads the scaler's modules
    from bench.keda_load.objects import ScaledObject
    from scaler.proto.externalscaler_pb2_grpc import ExternalScalerAsyncStub

#: how the parent starts this module as a program
PROGRAM = "bench.keda_load.lanes.stream_holder"


class Holder:
    """The program's streams and their counters."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.initial = 0
        self.messages = 0
        self.ended: Counter[str] = Counter()
        self.closing = False
        self.all_initial = asyncio.Event()

    async def hold(self, stub: ExternalScalerAsyncStub, ref: pb.ScaledObjectRef) -> None:
        call = stub.StreamIsActive(ref)
        first = True
        try:
            async for _ in call:
                if first:
                    first = False
                    self.initial += 1
                    if self.initial >= self.count:
                        self.all_initial.set()
                else:
                    self.messages += 1
            self.ended["OK"] += 1
        except asyncio.CancelledError:
            call.cancel()
            raise
        except grpc.aio.AioRpcError as err:
            if not self.closing:  # our own cancellation at the end is not an early end
                self.ended[err.code().name] += 1


def _refs(path: Path) -> list[pb.ScaledObjectRef]:
    raw: list[dict[str, Any]] = json.loads(path.read_text())
    return [
        pb.ScaledObjectRef(
            name=r["name"], namespace=r["namespace"], scalerMetadata=r["scalerMetadata"]
        )
        for r in raw
    ]


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


async def run(target: str, refs: list[pb.ScaledObjectRef], ready_within: float) -> dict[str, Any]:
    """Open one stream per ref, report readiness, hold until stdin closes or SIGTERM."""
    holder = Holder(len(refs))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    start = time.perf_counter()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ExternalScalerStub(channel)
        tasks = [loop.create_task(holder.hold(stub, ref)) for ref in refs]
        if not refs:
            holder.all_initial.set()
        try:
            await asyncio.wait_for(holder.all_initial.wait(), ready_within)
            word, ended = "READY", ""
        except TimeoutError:
            word, ended = "PARTIAL", " " + json.dumps(dict(holder.ended))
        seconds = time.perf_counter() - start
        print(f"{word} {holder.initial} {len(refs)} {seconds:.3f}{ended}", flush=True)
        waiter = loop.create_task(_stdin_closed())
        stopper = loop.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        holder.closing = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": len(refs),
        "initial": holder.initial,
        "activations": holder.messages,
        "ended_early": dict(holder.ended),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the scaler")
    parser.add_argument("--refs", required=True, type=Path, help="JSON list of ScaledObjectRefs")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    summary = asyncio.run(run(args.target, _refs(args.refs), args.timeout))
    print("DONE " + json.dumps(summary), flush=True)


# --- the benchmark's side ---------------------------------------------------------------------


class StreamHolder:
    """The program in its own process on the load core, holding S streams."""

    def __init__(self, child: ChildProcess, initial: int, streams: int, seconds: float) -> None:
        self.child = child
        self.initial = initial
        self.streams = streams
        self.ready_s = seconds

    def readiness(self) -> dict[str, Any]:
        return {"streams_with_initial_state": self.initial, "open_s": self.ready_s}

    @classmethod
    async def open(
        cls,
        target: str,
        objects: Sequence[ScaledObject],
        workdir: Path,
        cpu: int | None,
        ready_within: float = 60.0,
        allow_partial: bool = False,
    ) -> StreamHolder:
        """Start the holder and wait until every stream has its initial state.

        :param allow_partial: accept streams left silent after ``ready_within`` (naive mode:
            a read that keeps failing leaves its stream silent); otherwise that is an error
        """
        refs = workdir / f"streams-{uuid.uuid4().hex[:6]}.json"
        refs.write_text(json.dumps([o.ref() for o in objects]))
        argv = [sys.executable, "-m", PROGRAM, "--target", target, "--refs", str(refs)]
        argv += ["--timeout", f"{ready_within:g}"]
        child = await ChildProcess.start(
            "stream_holder",
            pinned(argv, cpu),
            workdir / f"holder-{refs.stem}.log",
            stdin=True,
            stdout=True,
        )
        assert child.process.stdout is not None
        try:
            line = await asyncio.wait_for(child.process.stdout.readline(), ready_within + 15)
        except TimeoutError:
            await child.stop()
            raise RuntimeError(f"stream holder silent for {ready_within + 15:g}s") from None
        text = line.decode().strip()
        word, *fields = text.split(" ", 4)
        if word not in ("READY", "PARTIAL") or len(fields) < 3:
            await child.stop(5)
            raise RuntimeError(f"stream holder: {text or 'exited'}\n{child.tail()}")
        holder = cls(child, int(fields[0]), int(fields[1]), float(fields[2]))
        if word == "PARTIAL" and not allow_partial:
            await holder.close()
            raise RuntimeError(
                f"only {holder.initial} of {holder.streams} streams received their initial state "
                f"within {ready_within:g}s; ended early: {fields[3] if len(fields) > 3 else '{}'}"
            )
        return holder

    async def close(self) -> dict[str, Any]:
        """Close the streams; the holder's own counts."""
        process = self.child.process
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()
        summary: dict[str, Any] = {}
        try:
            async with asyncio.timeout(20):
                async for raw in process.stdout:
                    line = raw.decode().strip()
                    if line.startswith("DONE "):
                        summary = json.loads(line[5:])
        except TimeoutError:
            pass
        await self.child.stop(5)
        return summary


if __name__ == "__main__":
    main()
