"""Chunks and the bounded, cancellation-safe channels that join a link's stages.

An item is taken out of a channel only by the consumer's own code after it
resumes, never handed over inside a future, so cancelling a waiting stage can
never lose a chunk. ``push`` never blocks (it may exceed the capacity, which is
how rewiring moves buffered data); producers that honour back-pressure call
``wait_space`` first.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes as one read returned them, with the loop time at which they arrived."""

    data: bytes
    ts: float


EOF: Final = Chunk(b"", -1.0)
"""The end of a stream (by identity); travels through the chain like data."""


class Outlet:
    """Where a stage or the reader pushes items: a channel or the link's sink."""

    def __init__(self) -> None:
        self._space_waiters: list[asyncio.Future[None]] = []
        self._space_callbacks: list[Callable[[], None]] = []

    def push(self, item: Chunk) -> None:
        raise NotImplementedError

    def full(self) -> bool:
        raise NotImplementedError

    async def wait_space(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._space_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._space_waiters:
                self._space_waiters.remove(fut)

    def on_space(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, the next time space may be available."""
        self._space_callbacks.append(callback)

    def notify_space(self) -> None:
        waiters, self._space_waiters = self._space_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        callbacks, self._space_callbacks = self._space_callbacks, []
        for callback in callbacks:
            callback()


class Channel(Outlet):
    """A FIFO of chunks with a soft capacity (in chunks)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = max(1, capacity)
        self.items: deque[Chunk] = deque()
        self.discarding = False
        self._getter: asyncio.Future[None] | None = None

    def push(self, item: Chunk) -> None:
        if self.discarding:
            return
        self.items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def extend(self, items: Iterable[Chunk]) -> None:
        for item in items:
            self.push(item)

    def unget(self, item: Chunk) -> None:
        """Put a chunk back at the front (a stage was interrupted while holding it)."""
        if not self.discarding:
            self.items.appendleft(item)

    def full(self) -> bool:
        return not self.discarding and len(self.items) >= self.capacity

    async def readable(self) -> None:
        """Wait until an item is available (the item stays in the channel)."""
        while not self.items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None

    async def get(self) -> Chunk:
        await self.readable()
        item = self.items.popleft()
        if len(self.items) < self.capacity:
            self.notify_space()
        return item

    def drain(self) -> list[Chunk]:
        items = list(self.items)
        self.items.clear()
        self.notify_space()
        return items

    def discard(self) -> None:
        """Drop what is queued and everything pushed later (its consumer has closed)."""
        self.discarding = True
        self.items.clear()
        self.notify_space()
