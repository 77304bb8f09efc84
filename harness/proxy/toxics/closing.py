"""Toxics that end connections: slow_close, timeout, reset_peer, limit_data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.proxy.channel import EOF
from harness.proxy.toxics.base import Stub, Toxic, sleep


class SlowCloseToxic(Toxic):
    """Pass data; hold the close (EOF) back for ``delay`` ms."""

    type_name = "slow_close"
    go_struct = "SlowCloseToxic"
    fields = {"delay": "int64"}

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                await sleep(self.attrs["delay"] / 1000.0)
                stub.close()
                return
            await stub.send(chunk)


class TimeoutToxic(Toxic):
    """Drop all data; close ``timeout`` ms after the start or the last chunk (0: never)."""

    type_name = "timeout"
    go_struct = "TimeoutToxic"
    fields = {"timeout": "int64"}

    def cleanup(self, state: Any = None) -> bool:
        return True

    async def pipe(self, stub: Stub) -> None:
        while True:
            timeout = self.attrs["timeout"]
            if not await stub.wait_input(timeout / 1000.0 if timeout > 0 else None):
                stub.close()
                return
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            stub.drop()  # data is dropped on the floor


@dataclass
class ResetState:
    taken: bool = False  # the first chunk was dropped: this connection is being reset


class ResetPeerToxic(Toxic):
    """Drop the first chunk (or EOF), wait ``timeout`` ms, then close (a RST: SO_LINGER 0).

    Once it took a chunk the reset always happens, as in Toxiproxy (whose wait cannot be
    interrupted): a toxic removed during the wait resets the connection then (Toxiproxy
    would first finish the wait). Removed between the drop and the close, it once left
    the connection open with a request lost: the client waited for ever (a PostgreSQL
    heartbeat hung at the end of a blip)."""

    type_name = "reset_peer"
    go_struct = "ResetToxic"
    fields = {"timeout": "int64"}

    def new_state(self) -> Any:
        return ResetState()

    def cleanup(self, state: Any = None) -> bool:
        return isinstance(state, ResetState) and state.taken

    async def pipe(self, stub: Stub) -> None:
        await stub.recv()
        stub.drop()
        stub.state.taken = True
        await sleep(self.attrs["timeout"] / 1000.0)
        stub.close()


@dataclass
class LimitState:
    transmitted: int = 0


class LimitDataToxic(Toxic):
    """Pass ``bytes`` bytes on the connection in this direction, then close it."""

    type_name = "limit_data"
    go_struct = "LimitDataToxic"
    fields = {"bytes": "int64"}
    stateful = True

    def new_state(self) -> Any:
        return LimitState()

    async def pipe(self, stub: Stub) -> None:
        state: LimitState = stub.state
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            remaining = max(self.attrs["bytes"] - state.transmitted, 0)
            data = chunk.data[:remaining]
            if data:
                await stub.send(type(chunk)(data, chunk.ts))
                state.transmitted += len(data)
            if self.attrs["bytes"] - state.transmitted <= 0:
                stub.close()
                return
