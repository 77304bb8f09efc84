"""A link: one direction of a proxied connection, as a chain of toxic stages.

``src`` socket → [stage 0] → [stage 1] → … → sink → ``dst`` socket. With no
toxics the reader writes straight to the sink (the fast path). Toxics are added,
updated and removed while data flows; buffered data is moved, never dropped.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import cast

from harness.proxy.channel import EOF, Chunk, Outlet
from harness.proxy.stage import Stage
from harness.proxy.toxics import ToxicWrapper
from harness.proxy.toxics.wrapper import Direction

WRITE_HIGH_WATER = 1024 * 1024
"""Reading from the other side pauses above this many unsent bytes (back-pressure)."""
READ_CHUNK = 32 * 1024
"""Chunks entering a toxic chain are at most this big, like upstream's ``io.Copy``."""


class Side(asyncio.Protocol):
    """One socket of a proxied connection (the client's or the upstream's)."""

    def __init__(self, on_made: Callable[[Side], None], on_lost: Callable[[Side], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader: Link | None = None
        self.sink: Sink | None = None
        self.write_paused = False
        self.lost = False
        self.early_eof = False
        self.early: list[bytes] = []
        """Data read before the links exist (some loops start reading after connection_made)."""
        self._on_made = on_made
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(data)
        else:
            self.early.append(data)
            self.pause_reading()

    def eof_received(self) -> bool:
        if self.reader is not None:
            self.reader.feed_eof()
        else:
            self.early_eof = True
        return True  # a half-close is not forwarded: keep writing until the other link ends

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.reader is not None:
            self.reader.feed_eof()
        self.resume_writing()
        self._on_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.sink is not None:
            self.sink.notify_space()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.resume_reading()

    def set_linger_zero(self) -> None:
        """Make the close a RST (``SO_LINGER`` on, timeout 0), like upstream's reset_peer."""
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abort()


class Sink(Outlet):
    """The end of a link: writes to ``dst``; EOF closes ``dst`` (flushing first)."""

    def __init__(self, dst: Side) -> None:
        super().__init__()
        self.dst = dst
        self.closed = False
        self.sent = 0
        dst.sink = self

    def write(self, data: bytes) -> None:
        dst = self.dst
        if self.closed or dst.lost or dst.transport is None:
            return
        dst.transport.write(data)
        self.sent += len(data)

    def push(self, item: Chunk) -> None:
        if item is EOF:
            if not self.closed:
                self.closed = True
                self.dst.close()
                self.notify_space()
            return
        self.write(item.data)

    def full(self) -> bool:
        return not self.closed and not self.dst.lost and self.dst.write_paused


class Link:
    def __init__(
        self, direction: Direction, src: Side, dst: Side, wrappers: list[ToxicWrapper]
    ) -> None:
        self.direction = direction
        self.src = src
        self.dst = dst
        self.sink = Sink(dst)
        self.stages: list[Stage] = []
        self.received = 0
        self.eof = False
        self.paused = False
        self._loop = asyncio.get_running_loop()
        for wrapper in wrappers:
            stage = Stage(wrapper, self.sink)
            if self.stages:
                self.stages[-1].output = stage.input
            self.stages.append(stage)
        src.reader = self

    def start(self) -> None:
        for stage in self.stages:
            stage.start()
        early, self.src.early = self.src.early, []
        for data in early:
            self.feed(data)
        if self.src.early_eof:
            self.feed_eof()

    def stop(self) -> None:
        """Cancel every stage; data inside the toxics is dropped (proxy disabled/removed)."""
        for stage in self.stages:
            stage.stop()
            stage.closed = True

    def head(self) -> Outlet:
        return self.stages[0].input if self.stages else self.sink

    # -- reading ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.eof:
            return
        if not self.stages:
            self.sink.write(data)
            head: Outlet = self.sink
        else:
            head = self.stages[0].input
            now = self._loop.time()
            if len(data) <= READ_CHUNK:
                head.push(Chunk(data, now))
            else:
                for start in range(0, len(data), READ_CHUNK):
                    head.push(Chunk(data[start : start + READ_CHUNK], now))
        if head.full():
            self._pause()

    def feed_eof(self) -> None:
        if not self.eof:
            self.eof = True
            self.head().push(EOF)

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.src.pause_reading()
            self.head().on_space(self._check_resume)

    def _check_resume(self) -> None:
        if not self.paused:
            return
        head = self.head()
        if head.full():
            head.on_space(self._check_resume)
            return
        self.paused = False
        self.src.resume_reading()

    # -- live chain changes ------------------------------------------------------------
    def _index(self, wrapper: ToxicWrapper) -> int:
        for index, stage in enumerate(self.stages):
            if stage.wrapper is wrapper:
                return index
        return -1

    def add(self, wrapper: ToxicWrapper) -> None:
        stage = Stage(wrapper, self.sink)
        if self.sink.closed:
            stage.closed = True
        if self.stages:
            previous = self.stages[-1]
            previous.output = stage.input
            self.stages.append(stage)
            previous.restart()  # upstream re-rolls the toxicity of the toxic before it
        else:
            self.stages.append(stage)
        stage.start()
        self._check_resume()

    def update(self, wrapper: ToxicWrapper) -> None:
        index = self._index(wrapper)
        if index >= 0:
            self.stages[index].restart()

    def remove(self, wrapper: ToxicWrapper) -> None:
        index = self._index(wrapper)
        if index < 0:
            return
        stage = self.stages[index]
        stage.stop()
        if stage.closed:
            pass
        elif wrapper.toxic.cleanup(stage.state):
            stage.close()  # e.g. timeout, or a reset_peer mid-reset: removing it closes
        else:
            for item in stage.input.drain():
                stage.output.push(item)
        stage.closed = True
        stage.input.discard()
        del self.stages[index]
        if index > 0:
            self.stages[index - 1].output = stage.output
            self.stages[index - 1].restart()
        self._check_resume()
