"""A StreamIsActive reader for tests: collects messages in the background."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc


class StreamReader:
    """Reads a server stream into a queue so tests can wait for, or rule out, messages."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.messages: asyncio.Queue[bool] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for message in self.call:
            await self.messages.put(message.result)

    async def next(self, timeout: float = 3.0) -> bool:
        return await asyncio.wait_for(self.messages.get(), timeout)

    async def nothing_for(self, seconds: float) -> bool:
        """True if no message arrives within ``seconds``."""
        await asyncio.sleep(seconds)
        return self.messages.empty()

    async def status(self, timeout: float = 5.0) -> grpc.StatusCode:
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
        code: grpc.StatusCode = await self.call.code()
        return code

    def cancel(self) -> None:
        self.call.cancel()
        self.task.cancel()
