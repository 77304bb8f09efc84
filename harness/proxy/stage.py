"""One toxic running on one link: its input channel, task, held chunk and state."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import Any

from harness.proxy.channel import EOF, Channel, Chunk, Outlet
from harness.proxy.toxics import ToxicWrapper, pass_through

log = logging.getLogger("harness.proxy")


class Stage:
    """Runs ``wrapper.toxic.pipe`` (or a pass-through when the toxicity roll fails).

    Interrupting (``stop``) cancels the task and puts any chunk it held back at the
    front of its input, so restarting or removing a toxic never loses a byte.
    """

    def __init__(self, wrapper: ToxicWrapper, output: Outlet) -> None:
        self.wrapper = wrapper
        self.input = Channel(wrapper.toxic.buffer_size)
        self.output = output
        self.state: Any = wrapper.toxic.new_state()
        self.held: Chunk | None = None
        self.closed = False
        self.task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # -- lifecycle (called by Link) --------------------------------------------------
    def start(self) -> None:
        if self.closed:
            return
        active = random.random() < self.wrapper.toxicity
        coro = self.wrapper.toxic.pipe(self) if active else pass_through(self)
        self.task = self._loop.create_task(self._run(coro))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.held is not None:
            self.input.unget(self.held)
            self.held = None

    def restart(self) -> None:
        if not self.closed:
            self.stop()
            self.start()

    async def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("toxic %s failed; closing its link", self.wrapper.name)
            self.close()

    # -- the Stub protocol used by toxics -------------------------------------------
    async def recv(self) -> Chunk:
        item = await self.input.get()
        self.held = item
        return item

    async def send(self, item: Chunk, rest: Chunk | None = None) -> None:
        while self.output.full():
            await self.output.wait_space()
        self.output.push(item)
        self.held = rest

    async def wait_input(self, timeout: float | None) -> bool:
        if self.input.items:
            return True
        if timeout is None:
            await self.input.readable()
            return True
        try:
            async with asyncio.timeout(timeout):
                await self.input.readable()
        except TimeoutError:
            return False
        return True

    def drop(self) -> None:
        self.held = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.held = None
        self.input.discard()
        self.output.push(EOF)

    def now(self) -> float:
        return self._loop.time()
