"""Benchmark harness.proxy against a direct connection (prints figures, asserts nothing).

    .venv/bin/python benchmarks/proxy.py [--round-trips 5000] [--stream-mib 64]

Measures, in the same run, for a direct connection and through the proxy (no toxics):
- the round-trip time of small (16-byte) request/response pairs: p50 and p99, and
  the latency the proxy adds (goal: added p50 <= 150 us);
- the throughput of one 64 MiB stream (goal: >= 0.5x direct).

The upstream echo/sink servers run in their own uvloop process, the proxy in its own
process (``ToxiproxyServer(builtin=True)``), the client here with blocking sockets.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

from harness.proxy.launcher import ToxiproxyServer
from harness.services.ports import free_port
from harness.wait import wait_until

UPSTREAMS = r"""
import asyncio, sys, uvloop
stream_size = int(sys.argv[3])

class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)

class Sink(asyncio.Protocol):
    def connection_made(self, t): self.t, self.n = t, 0
    def data_received(self, d):
        self.n += len(d)
        if self.n >= stream_size:
            self.n -= stream_size
            self.t.write(b"k")

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await loop.create_server(Sink, "127.0.0.1", int(sys.argv[2]))
    await asyncio.Event().wait()

uvloop.run(main())
"""


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(port: int, count: int) -> list[float]:
    payload = b"0123456789abcdef"
    samples: list[float] = []
    with connect(port) as sock:
        for _ in range(200):  # warm up
            sock.sendall(payload)
            sock.recv(64)
        for _ in range(count):
            start = time.perf_counter()
            sock.sendall(payload)
            got = sock.recv(64)
            while len(got) < len(payload):
                got += sock.recv(64)
            samples.append(time.perf_counter() - start)
    return samples


def stream(port: int, size: int) -> float:
    block = os.urandom(1 << 20)
    with connect(port) as sock:
        start = time.perf_counter()
        sent = 0
        while sent < size:
            sock.sendall(block)
            sent += len(block)
        assert sock.recv(1) == b"k"
        return time.perf_counter() - start


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--stream-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (best is kept)")
    args = parser.parse_args()
    size = args.stream_mib << 20

    echo_port, sink_port = free_port(), free_port()
    upstreams = subprocess.Popen(
        [sys.executable, "-c", UPSTREAMS, str(echo_port), str(sink_port), str(size)],
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: connect(sink_port).close() is None,
            15,
            describe="the upstream echo/sink servers",
            transient=(OSError,),
        )
        with ToxiproxyServer(builtin=True) as server:
            echo = server.create_proxy("bench_echo", f"127.0.0.1:{echo_port}")
            sink = server.create_proxy("bench_sink", f"127.0.0.1:{sink_port}")
            print(f"proxy server: {server!r}; CPUs: {os.cpu_count()}; load: {os.getloadavg()}")

            direct = round_trips(echo_port, args.round_trips)
            proxied = round_trips(echo.listen_port, args.round_trips)
            print(f"\nround trips of 16 bytes (n={args.round_trips}), microseconds:")
            print(f"  {'':10} {'p50':>8} {'p99':>8} {'mean':>8}")
            for label, samples in (("direct", direct), ("proxied", proxied)):
                print(
                    f"  {label:10} {quantile(samples, 0.5) * 1e6:8.1f} "
                    f"{quantile(samples, 0.99) * 1e6:8.1f} {statistics.fmean(samples) * 1e6:8.1f}"
                )
            added50 = (quantile(proxied, 0.5) - quantile(direct, 0.5)) * 1e6
            added99 = (quantile(proxied, 0.99) - quantile(direct, 0.99)) * 1e6
            print(f"  added      {added50:8.1f} {added99:8.1f}   (goal: added p50 <= 150 us)")

            direct_s = min(stream(sink_port, size) for _ in range(args.repeat))
            proxied_s = min(stream(sink.listen_port, size) for _ in range(args.repeat))
            mib = size / (1 << 20)
            print(f"\nthroughput of one {mib:.0f} MiB stream (best of {args.repeat}):")
            print(f"  direct     {mib / direct_s:8.1f} MiB/s")
            print(f"  proxied    {mib / proxied_s:8.1f} MiB/s")
            print(f"  ratio      {direct_s / proxied_s:8.2f}x direct   (goal: >= 0.5x)")
    finally:
        os.killpg(upstreams.pid, signal.SIGKILL)
        upstreams.wait()


if __name__ == "__main__":
    main()
