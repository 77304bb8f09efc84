"""Conformance checks 15-25: the data plane with real sockets.

Timing bounds: lower bounds are tight (a toxic never takes less than it should);
upper bounds are generous because other test suites load this machine.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time

import httpx
import pytest

from harness.wait import wait_until
from tests.proxy.proxy_helpers import (
    MakeProxy,
    TcpServer,
    connect,
    recv_exactly,
    recv_until_closed,
    round_trip,
)

SLACK = 1.0  # seconds of scheduling noise tolerated above a toxic's nominal time


def add_toxic(api: httpx.Client, proxy: str, **body: object) -> dict[str, object]:
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


# 15
def test_bytes_pass_unchanged(make_proxy: MakeProxy) -> None:
    _name, port = make_proxy()
    payload = os.urandom(64 * 1024)
    with connect(port) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        for part in (b"a", b"bc", b"def" * 1000):
            sock.sendall(part)
            assert recv_exactly(sock, len(part)) == part


def test_upstream_down_accepts_then_closes(make_proxy: MakeProxy) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    _name, port = make_proxy(upstream=f"127.0.0.1:{dead}")
    with connect(port) as sock:
        data, error = recv_until_closed(sock)
        assert data == b"" and error is None


# 16
@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_latency_one_way(api: httpx.Client, make_proxy: MakeProxy, stream: str) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="latency", stream=stream, attributes={"latency": 100})
    with connect(port) as sock:
        for _ in range(3):
            elapsed = round_trip(sock)
            assert 0.099 <= elapsed < 0.1 + SLACK


# 17
def test_stacked_latency_adds_up(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="latency", name="a", attributes={"latency": 150})
    add_toxic(api, name, type="latency", name="b", attributes={"latency": 150})
    with connect(port) as sock:
        assert 0.299 <= round_trip(sock) < 0.3 + SLACK


def test_latency_does_not_limit_throughput(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="latency", attributes={"latency": 100})
    payload = os.urandom(16 * 1024 * 1024)  # 512 chunks: 51 s if latency were serial
    with connect(port) as sock:
        start = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - start
        sender.join()
    assert 0.099 <= elapsed < 5.0


# 18
def test_bandwidth(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="bandwidth", stream="upstream", attributes={"rate": 1000})
    payload = os.urandom(480_000)
    with connect(port) as sock:
        start = time.monotonic()
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - start
        sender.join()
    assert 0.45 <= elapsed < 0.48 + SLACK


def test_bandwidth_zero_holds_until_removed(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="bandwidth", attributes={"rate": 0})
    with connect(port) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"held")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        api.delete(f"/proxies/{name}/toxics/bandwidth_downstream")
        sock.settimeout(10)
        assert recv_exactly(sock, 4) == b"held"


# 19
def test_timeout_zero_holds_then_removal_closes(
    api: httpx.Client, make_proxy: MakeProxy, echo_server: TcpServer
) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="timeout", attributes={"timeout": 0})
    with connect(port) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"dropped")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(10)
        api.delete(f"/proxies/{name}/toxics/timeout_downstream")
        assert recv_until_closed(sock) == (b"", None)
    upstream_side = echo_server.accepted[-1]
    upstream_side.settimeout(10)
    assert upstream_side.recv(100) in (b"", b"dropped")  # then EOF: both ends closed


def test_timeout_closes_after_idle(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="timeout", attributes={"timeout": 100})
    with connect(port) as sock:
        start = time.monotonic()
        assert recv_until_closed(sock) == (b"", None)
        assert 0.095 <= time.monotonic() - start < 0.1 + SLACK


# 20
@pytest.mark.parametrize("timeout_ms", [0, 100])
def test_reset_peer(api: httpx.Client, make_proxy: MakeProxy, timeout_ms: int) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="reset_peer", stream="upstream", attributes={"timeout": timeout_ms})
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        data, error = recv_until_closed(sock)
        elapsed = time.monotonic() - start
    assert data == b""
    assert isinstance(error, ConnectionResetError) and error.errno == errno.ECONNRESET
    assert timeout_ms / 1000 - 0.005 <= elapsed < timeout_ms / 1000 + SLACK


def test_reset_peer_added_to_open_connection_closes_with_fin(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    name, port = make_proxy()
    with connect(port) as sock:
        round_trip(sock)
        add_toxic(api, name, type="reset_peer", stream="upstream")
        sock.sendall(b"x")
        assert recv_until_closed(sock) == (b"", None)


def test_reset_peer_removed_while_it_waits_still_resets(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    """Once it dropped the first chunk the reset must come, even if the toxic goes away
    during its wait: else the client waits for ever for the answer to a lost request."""
    name, port = make_proxy()
    with connect(port) as sock:
        round_trip(sock)
        toxic = add_toxic(
            api, name, type="reset_peer", stream="upstream", attributes={"timeout": 2000}
        )
        sock.sendall(b"lost")
        # Neither proxy shows when its toxic took the chunk (microseconds on loopback), so
        # this only gives it room; a removal that came first cannot pass the test: the chunk
        # would then be echoed and ``data == b""`` below fails.
        time.sleep(0.2)
        start = time.monotonic()
        assert api.delete(f"/proxies/{name}/toxics/{toxic['name']}").status_code == 204
        sock.settimeout(5.0)
        data, error = recv_until_closed(sock)
        elapsed = time.monotonic() - start
    assert data == b""  # the request was dropped, never echoed
    assert not isinstance(error, TimeoutError), "the connection was left open"
    assert elapsed < 2.0 + SLACK  # at once (built-in) or when the wait ends (Toxiproxy)


# 21
def test_slow_close(api: httpx.Client, make_proxy: MakeProxy) -> None:
    def greet_and_close(conn: socket.socket) -> None:
        conn.sendall(b"hi")
        conn.close()

    greeter = TcpServer(greet_and_close)
    try:
        name, port = make_proxy(upstream=greeter.address)
        add_toxic(api, name, type="slow_close", attributes={"delay": 200})
        with connect(port) as sock:
            start = time.monotonic()
            assert recv_exactly(sock, 2) == b"hi"
            assert time.monotonic() - start < 0.15 + SLACK
            assert recv_until_closed(sock) == (b"", None)
            assert 0.195 <= time.monotonic() - start < 0.2 + SLACK
    finally:
        greeter.close()


# 22
def test_slicer(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="slicer", attributes={"average_size": 1, "delay": 20_000})
    payload = b"0123456789"
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < len(payload):
            pieces.append(sock.recv(100))
        assert b"".join(pieces) == payload
        assert len(pieces) >= 3
        assert time.monotonic() - start >= 0.18  # 9 gaps of 20 ms


def test_slicer_keeps_large_data_identical(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="slicer", attributes={"average_size": 1024, "size_variation": 512})
    payload = os.urandom(480_000)
    with connect(port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join()


# 23
def test_limit_data(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="limit_data", attributes={"bytes": 100})
    with connect(port) as sock:
        sock.sendall(b"a" * 60)
        assert recv_exactly(sock, 60) == b"a" * 60
        sock.sendall(b"b" * 60)
        assert recv_until_closed(sock) == (b"b" * 40, None)


def test_limit_data_zero_closes_on_first_data(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="limit_data", stream="upstream", attributes={"bytes": 0})
    with connect(port) as sock:
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # still open before any data
        sock.settimeout(10)
        sock.sendall(b"x")
        assert recv_until_closed(sock) == (b"", None)


# 24
def test_toxicity(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    add_toxic(api, name, type="latency", toxicity=0, attributes={"latency": 300})
    with connect(port) as sock:
        for _ in range(5):
            assert round_trip(sock) < 0.25
        api.post(f"/proxies/{name}/toxics/latency_downstream", json={"toxicity": 1})
        assert round_trip(sock) >= 0.299  # the update reaches the open connection
    with connect(port) as sock:
        assert round_trip(sock) >= 0.299


# 25
def test_toxic_added_to_open_connection(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    with connect(port) as sock:
        assert round_trip(sock) < 0.25
        add_toxic(api, name, type="latency", attributes={"latency": 300})
        assert round_trip(sock) >= 0.299
        api.delete(f"/proxies/{name}/toxics/latency_downstream")
        assert round_trip(sock) < 0.25


def test_rapid_add_remove_loses_no_bytes(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    payload = os.urandom(8 * 1024 * 1024)
    with connect(port, timeout=30) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(recv_exactly(sock, len(payload))))
        sender.start()
        reader.start()
        toxics = [
            {"type": "latency", "attributes": {"latency": 5}},
            {"type": "slicer", "attributes": {"average_size": 4096, "size_variation": 100}},
            {"type": "bandwidth", "attributes": {"rate": 50_000}},
            {"type": "noop"},
        ]
        round_number = 0
        while round_number < 20 or reader.is_alive():
            round_number += 1
            for toxic in toxics:
                for stream in ("upstream", "downstream"):
                    add_toxic(api, name, stream=stream, **toxic)
            for toxic in toxics if round_number % 2 else reversed(toxics):
                for stream in ("upstream", "downstream"):
                    api.delete(f"/proxies/{name}/toxics/{toxic['type']}_{stream}")
        sender.join(60)
        reader.join(60)
    assert received and received[0] == payload


def test_metrics_when_enabled(echo_server: TcpServer) -> None:
    from harness.proxy.launcher import ToxiproxyServer

    with ToxiproxyServer(builtin=True, extra_args=("-proxy-metrics", "-runtime-metrics")) as server:
        client = httpx.Client(base_url=server.url, timeout=30)
        with client:
            created = client.post(
                "/proxies",
                json={"name": "m", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
            ).json()
            port = int(created["listen"].rsplit(":", 1)[1])
            with connect(port) as sock:
                round_trip(sock, b"12345")

            def counted() -> str | None:
                text = client.get("/metrics").text
                return text if "toxiproxy_proxy_sent_bytes_total" in text else None

            text = wait_until(counted, 10, describe="byte counters after the link ended")
            labels = f'listener="{created["listen"]}",proxy="m",upstream="{echo_server.address}"'
            assert (
                f'toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 5' in text
            )
            assert f'toxiproxy_proxy_sent_bytes_total{{direction="downstream",{labels}}} 5' in text
            assert "process_cpu_seconds_total" in text
