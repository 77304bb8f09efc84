"""Benchmark the built-in proxy against the real Toxiproxy and a direct connection
(prints figures, asserts nothing).

    .venv/bin/python benchmarks/proxy.py [--rounds 5] [--round-trips 1000] [--stream-mib 64]

In the same run, rounds interleaved (each round measures every target once, in a
rotating order, so drift in machine load hits all of them alike):

- the round-trip time of small (16-byte) request/response pairs: p50 and p99, and
  what the proxy adds to the direct connection's (goal: built-in p50 <= real p50);
- the throughput of one 64 MiB stream and its ratio to direct (goal: built-in ratio
  >= real ratio);

both without toxics and with a downstream latency toxic (``--latency-ms``, default 5)
on the proxies. The load average is printed with the figures. The upstream echo/sink
servers run in their own uvloop process, each proxy server in its own process, the
client here with blocking sockets. The real server is ``.peers/bin/toxiproxy-server``
(``make peers``) or ``--real PATH``; without it only the built-in is measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from harness import peers
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


@dataclass
class Target:
    label: str
    echo_port: int
    sink_port: int
    server: ToxiproxyServer | None = None


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trips(port: int, count: int) -> list[float]:
    payload = b"0123456789abcdef"
    samples: list[float] = []
    with connect(port) as sock:
        for _ in range(min(200, count)):  # warm up
            sock.sendall(payload)
            got = sock.recv(64)
            while len(got) < len(payload):
                got += sock.recv(64)
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
    return statistics.quantiles(samples, n=100, method="inclusive")[round(q * 100) - 1]


@contextmanager
def upstream_servers(size: int) -> Iterator[tuple[int, int]]:
    echo_port, sink_port = free_port(), free_port()
    process = subprocess.Popen(
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
        yield echo_port, sink_port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def proxied(server: ToxiproxyServer, label: str, echo_port: int, sink_port: int) -> Target:
    echo = server.create_proxy("bench_echo", f"127.0.0.1:{echo_port}")
    sink = server.create_proxy("bench_sink", f"127.0.0.1:{sink_port}")
    return Target(label, echo.listen_port, sink.listen_port, server)


def set_latency(target: Target, latency_ms: int | None) -> None:
    if target.server is None:
        return
    for proxy in ("bench_echo", "bench_sink"):
        client = target.server.client
        if latency_ms is None:
            client._request("DELETE", f"/proxies/{proxy}/toxics/bench_latency", "removing")
        else:
            body = {
                "name": "bench_latency",
                "type": "latency",
                "attributes": {"latency": latency_ms},
            }
            client._request("POST", f"/proxies/{proxy}/toxics", "adding latency", json=body)


def find_real(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    built = peers.peer_binary(peers.TOXIPROXY)
    return str(built) if built else shutil.which(peers.TOXIPROXY)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=1000, help="per target and round")
    parser.add_argument("--stream-mib", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=5, help="the latency toxic")
    parser.add_argument("--real", help="path of toxiproxy-server (default: .peers/bin, PATH)")
    args = parser.parse_args()
    size = args.stream_mib << 20
    real_binary = find_real(args.real)

    # samples[(condition, label)] -> round-trip seconds; streams[...] -> seconds per stream
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    streams: dict[tuple[str, str], list[float]] = defaultdict(list)
    conditions = ["no toxic", f"latency {args.latency_ms} ms"]
    load_before = os.getloadavg()
    with ExitStack() as stack:
        echo_port, sink_port = stack.enter_context(upstream_servers(size))
        targets = [Target("direct", echo_port, sink_port)]
        builtin = stack.enter_context(ToxiproxyServer(builtin=True))
        targets.append(proxied(builtin, "built-in", echo_port, sink_port))
        if real_binary:
            real = stack.enter_context(ToxiproxyServer(binary=real_binary))
            targets.append(proxied(real, "real", echo_port, sink_port))
        else:
            print(f"(no real Toxiproxy: {peers.missing_hint(peers.TOXIPROXY)})")
        print(f"targets: {', '.join(t.label for t in targets)}; real: {real_binary or '-'}")
        print(f"CPUs: {os.cpu_count()}; load average before: {_load(load_before)}")
        for condition in conditions:
            toxic = None if condition == "no toxic" else args.latency_ms
            if toxic is not None:
                for target in targets:
                    set_latency(target, toxic)
            count = args.round_trips if toxic is None else max(50, args.round_trips // 5)
            for round_number in range(args.rounds):
                shift = round_number % len(targets)
                for target in targets[shift:] + targets[:shift]:
                    if toxic is not None and target.server is None:
                        continue  # direct has no toxic: compared with its no-toxic figures
                    samples[condition, target.label] += round_trips(target.echo_port, count)
                    streams[condition, target.label].append(stream(target.sink_port, size))
            for target in targets:
                if toxic is not None:
                    set_latency(target, None)
        load_after = os.getloadavg()
    report(samples, streams, conditions, [t.label for t in targets], args, load_after)


def report(
    samples: dict[tuple[str, str], list[float]],
    streams: dict[tuple[str, str], list[float]],
    conditions: list[str],
    labels: list[str],
    args: argparse.Namespace,
    load_after: tuple[float, float, float],
) -> None:
    mib = args.stream_mib
    print(
        f"\n{args.rounds} rounds, interleaved; round trips of 16 bytes (us); "
        f"one {mib} MiB stream per round (best MiB/s)"
    )
    header = f"{'condition':16} {'target':9} {'p50':>8} {'p99':>8} {'+p50':>8} {'+p99':>8}"
    print(f"{header} {'MiB/s':>8} {'x direct':>8}")
    direct = samples["no toxic", "direct"]
    direct_best = min(streams["no toxic", "direct"])
    for condition in conditions:
        for label in labels:
            if (condition, label) not in samples:
                continue
            got = samples[condition, label]
            best = min(streams[condition, label])
            p50, p99 = quantile(got, 0.5) * 1e6, quantile(got, 0.99) * 1e6
            add50 = p50 - quantile(direct, 0.5) * 1e6
            add99 = p99 - quantile(direct, 0.99) * 1e6
            print(
                f"{condition:16} {label:9} {p50:8.1f} {p99:8.1f} {add50:8.1f} {add99:8.1f} "
                f"{mib / best:8.1f} {direct_best / best:8.2f}"
            )
    print(f"load average after: {_load(load_after)}")
    if "real" in labels:
        for condition in conditions:
            ours, theirs = samples[condition, "built-in"], samples[condition, "real"]
            p50_ok = quantile(ours, 0.5) <= quantile(theirs, 0.5)
            ratio_ok = min(streams[condition, "built-in"]) <= min(streams[condition, "real"])
            print(
                f"goal ({condition}): built-in p50 <= real: {'met' if p50_ok else 'MISSED'}; "
                f"built-in throughput >= real: {'met' if ratio_ok else 'MISSED'}"
            )


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


if __name__ == "__main__":
    main()
