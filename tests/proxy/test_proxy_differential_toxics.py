"""The data-plane toxics measured through the built-in server and the real Toxiproxy.

Each toxic is measured the same way through both servers (same upstream echo server,
same client code) and the figures are compared: timings within a tolerance, counts
and closing behaviour exactly. ``pytest -s`` prints the table.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.proxy.launcher import ToxiproxyServer
from tests.proxy.conftest import real_toxiproxy_binary
from tests.proxy.proxy_helpers import TcpServer, connect, echo, recv_exactly, recv_until_closed


@dataclass(frozen=True)
class Figure:
    value: float | str
    unit: str
    tolerance: float = 0.0  # absolute, for numbers; strings must be equal


class Bench:
    """One server: a fresh proxy to the echo server per measurement."""

    def __init__(self, server: ToxiproxyServer, upstream: str) -> None:
        self.api = httpx.Client(base_url=server.url, timeout=30)
        self.upstream = upstream
        self.count = 0

    def proxy(self, *toxics: dict[str, object]) -> tuple[str, int]:
        self.count += 1
        name = f"m{self.count}"
        body = {"name": name, "upstream": self.upstream, "listen": "127.0.0.1:0"}
        created = self.api.post("/proxies", json=body)
        assert created.status_code == 201, created.text
        for toxic in toxics:
            response = self.api.post(f"/proxies/{name}/toxics", json=toxic)
            assert response.status_code == 200, response.text
        return name, int(created.json()["listen"].rsplit(":", 1)[1])


def _echo_times(port: int, rounds: int, payload: bytes = b"ping") -> list[float]:
    with connect(port) as sock:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload
            times.append((time.perf_counter() - start) * 1000)
    return times


def latency(bench: Bench) -> Figure:
    _name, port = bench.proxy({"type": "latency", "attributes": {"latency": 50}})
    return Figure(statistics.median(_echo_times(port, 15)), "ms round trip (p50)", 15)


def jitter(bench: Bench) -> Figure:
    toxic = {"type": "latency", "attributes": {"latency": 60, "jitter": 40}}
    _name, port = bench.proxy(toxic)
    times = _echo_times(port, 40)
    assert min(times) >= 19, times  # 60 - 40 ms, never less
    return Figure(statistics.pstdev(times), "ms stdev (uniform ±40: ~23)", 12)


def bandwidth(bench: Bench) -> Figure:
    _name, port = bench.proxy({"type": "bandwidth", "attributes": {"rate": 500}})
    payload = b"b" * 250_000
    with connect(port, timeout=30) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        return Figure((time.perf_counter() - start) * 1000, "ms for 250 kB at 500 kB/s", 150)


def slicer(bench: Bench) -> Figure:
    toxic = {"type": "slicer", "attributes": {"average_size": 100, "delay": 2000}}
    _name, port = bench.proxy(toxic)
    payload = bytes(range(256)) * 40  # 10 kB: ~100 pieces, 2 ms apart
    with connect(port, timeout=30) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        return Figure((time.perf_counter() - start) * 1000, "ms for 10 kB in ~100-byte slices", 150)


def limit_data(bench: Bench) -> Figure:
    _name, port = bench.proxy({"type": "limit_data", "attributes": {"bytes": 1000}})
    with connect(port) as sock:
        sock.sendall(b"x" * 600)
        time.sleep(0.05)  # two chunks, so the limit cuts the second one
        sock.sendall(b"y" * 600)
        data, error = recv_until_closed(sock)
    return Figure(f"{len(data)} bytes then {_ending(error)}", "")


def reset_peer(bench: Bench) -> Figure:
    _name, port = bench.proxy({"type": "reset_peer", "attributes": {"timeout": 200}})
    with connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(b"hello")
        data, error = recv_until_closed(sock)
        took = (time.perf_counter() - start) * 1000
    assert 190 <= took <= 1200, took
    return Figure(f"{len(data)} bytes then {_ending(error)}", "")


def timeout(bench: Bench) -> Figure:
    _name, port = bench.proxy({"type": "timeout", "attributes": {"timeout": 200}})
    with connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(b"hello")
        data, error = recv_until_closed(sock)
        assert not data and error is None
        return Figure((time.perf_counter() - start) * 1000, "ms until closed (timeout 200)", 100)


def down(bench: Bench) -> Figure:
    name, port = bench.proxy()
    with connect(port) as sock:
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        assert bench.api.post(f"/proxies/{name}", json={"enabled": False}).status_code == 200
        _data, error = recv_until_closed(sock)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        new = "accepted"
    except ConnectionRefusedError:
        new = "refused"
    return Figure(f"open: {_ending(error)}; new: {new}", "")


def _ending(error: BaseException | None) -> str:
    return "EOF" if error is None else type(error).__name__


MEASUREMENTS: dict[str, Callable[[Bench], Figure]] = {
    "latency": latency,
    "jitter": jitter,
    "bandwidth": bandwidth,
    "slicer": slicer,
    "limit_data": limit_data,
    "reset_peer": reset_peer,
    "timeout": timeout,
    "down": down,
}


@pytest.fixture(scope="module")
def benches() -> Iterator[tuple[Bench, Bench]]:
    upstream = TcpServer(echo)
    builtin = ToxiproxyServer(builtin=True)
    real = ToxiproxyServer(binary=real_toxiproxy_binary())
    try:
        with builtin, real:
            yield Bench(builtin, upstream.address), Bench(real, upstream.address)
    finally:
        upstream.close()


def test_toxics_measure_the_same_through_both_servers(benches: tuple[Bench, Bench]) -> None:
    ours, theirs = benches
    rows, mismatches = [], []
    for toxic, measure in MEASUREMENTS.items():
        got, want = measure(ours), measure(theirs)
        if isinstance(got.value, str) or isinstance(want.value, str):
            same = got.value == want.value
        else:
            same = abs(got.value - want.value) <= got.tolerance
        row = f"{toxic:11} {_show(got.value):>32} {_show(want.value):>32}  {got.unit}"
        rows.append(row + ("" if same else "   <-- differs"))
        if not same:
            mismatches.append(row)
    print(f"\n{'toxic':11} {'built-in':>32} {'real Toxiproxy':>32}")
    print("\n".join(rows))
    assert not mismatches, "\n".join(mismatches)


def _show(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.1f}"
