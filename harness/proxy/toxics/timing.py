"""Toxics that delay or reshape data: latency, bandwidth, slicer, and noop."""

from __future__ import annotations

import random

from harness.proxy.channel import EOF, Chunk
from harness.proxy.toxics.base import Stub, Toxic, pass_through, sleep


class NoopToxic(Toxic):
    type_name = "noop"
    go_struct = "NoopToxic"

    async def pipe(self, stub: Stub) -> None:
        await pass_through(stub)


class LatencyToxic(Toxic):
    """Delay each chunk by ``latency ± jitter`` ms from its arrival, FIFO."""

    type_name = "latency"
    go_struct = "LatencyToxic"
    fields = {"latency": "int64", "jitter": "int64"}
    buffer_size = 1024

    def delay(self) -> float:
        latency, jitter = self.attrs["latency"], self.attrs["jitter"]
        ms = float(latency)
        if jitter > 0:
            ms += random.uniform(-jitter, jitter)
        return ms / 1000.0

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            wait = self.delay() - (stub.now() - chunk.ts)
            if wait > 0:
                await sleep(wait)
            await stub.send(Chunk(chunk.data, chunk.ts + wait))


class BandwidthToxic(Toxic):
    """Limit to ``rate`` KB/s (1 KB = 1000 bytes); rate 0 holds data indefinitely.

    A negative rate is accepted like upstream, which then panics when data flows;
    here it holds data like 0 (a documented difference)."""

    type_name = "bandwidth"
    go_struct = "BandwidthToxic"
    fields = {"rate": "int64"}

    async def pipe(self, stub: Stub) -> None:
        debt = 0.0
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            rate = self.attrs["rate"]
            if rate <= 0:
                await sleep(float("inf"))  # held until the toxic is updated or removed
                continue
            debt += len(chunk.data) / (rate * 1000.0)
            data, step = chunk.data, rate * 100
            while len(data) > step:
                await sleep(0.1)
                piece, data = data[:step], data[step:]
                await stub.send(Chunk(piece, chunk.ts), Chunk(data, chunk.ts))
                debt -= 0.1
            start = stub.now()
            await sleep(debt)
            debt -= stub.now() - start
            await stub.send(Chunk(data, chunk.ts))


class SlicerToxic(Toxic):
    """Cut each chunk into pieces of about ``average_size ± size_variation`` bytes."""

    type_name = "slicer"
    go_struct = "SlicerToxic"
    fields = {"average_size": "int", "size_variation": "int", "delay": "int"}

    def cuts(self, size: int) -> list[int]:
        # Upstream accepts any values and then recurses forever (average_size < 1) or
        # panics (size_variation outside 0..average_size); here they are clamped.
        average = max(1, self.attrs["average_size"])
        variation = min(max(0, self.attrs["size_variation"]), average)
        bounds: list[int] = []
        todo = [(0, size)]
        while todo:
            start, end = todo.pop()
            if (end - start) - average <= variation or end - start < 2:
                bounds.append(end)
                continue
            mid = start + (end - start) // 2
            if variation > 0:
                mid += random.randrange(variation * 2) - variation
            mid = min(max(mid, start + 1), end - 1)
            todo.append((mid, end))
            todo.append((start, mid))
        return bounds

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            data, start = chunk.data, 0
            for end in self.cuts(len(data)):
                rest = Chunk(data[end:], chunk.ts) if end < len(data) else None
                await stub.send(Chunk(data[start:end], chunk.ts), rest)
                start = end
                if rest is not None and self.attrs["delay"] > 0:
                    await sleep(self.attrs["delay"] / 1e6)
