"""What every toxic is: Go-typed attributes, validation, and a ``pipe`` coroutine."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Protocol

from harness.proxy.channel import Chunk
from harness.proxy.gojson import GoKind

MAX_SLEEP = 30 * 24 * 3600.0
"""Longer delays are clamped (upstream would overflow ``time.Duration`` anyway)."""


def clamp_sleep(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_SLEEP)


class Stub(Protocol):
    """The view of one link stage that a toxic's ``pipe`` works with."""

    state: Any

    async def recv(self) -> Chunk:
        """The next chunk or :data:`EOF`; the stage now holds it."""

    async def send(self, item: Chunk, rest: Chunk | None = None) -> None:
        """Forward ``item`` (honouring back-pressure); the stage then holds ``rest``."""

    async def wait_input(self, timeout: float | None) -> bool:
        """Wait until input is available (True) or ``timeout`` seconds pass (False)."""

    def drop(self) -> None:
        """Forget the held chunk: it is dropped, not forwarded."""

    def close(self) -> None:
        """Forward EOF and stop: this stage's link will close."""

    def now(self) -> float:
        """The loop clock, comparable with :attr:`Chunk.ts`."""


class Toxic:
    """Base class: attributes are ints (Go ``int64``/``int``), all defaulting to 0."""

    type_name: ClassVar[str] = ""
    go_struct: ClassVar[str] = ""
    fields: ClassVar[dict[str, GoKind]] = {}
    buffer_size: ClassVar[int] = 16
    stateful: ClassVar[bool] = False

    def __init__(self) -> None:
        self.attrs: dict[str, int] = dict.fromkeys(self.fields, 0)

    def new_state(self) -> Any:
        return None

    def cleanup(self, state: Any = None) -> bool:
        """Whether removing this toxic closes a connection of its direction (whose stage
        holds ``state``)."""
        return False

    async def pipe(self, stub: Stub) -> None:
        raise NotImplementedError

    def attributes_json(self) -> dict[str, int]:
        return dict(self.attrs)


async def pass_through(stub: Stub) -> None:
    """Forward every chunk unchanged (noop, and any toxic that lost its toxicity roll)."""
    while True:
        chunk = await stub.recv()
        if chunk.ts < 0:
            stub.close()
            return
        await stub.send(chunk)


async def sleep(seconds: float) -> None:
    await asyncio.sleep(clamp_sleep(seconds))
