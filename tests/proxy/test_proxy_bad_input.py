"""Bad input gets a 4xx in upstream's error format and the server keeps serving."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.proxy.proxy_helpers import MakeProxy, builtin_only, connect, round_trip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "latency", "attributes": {"latency": "1"}}, "cannot unmarshal string"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, "cannot unmarshal number 1.5"),
        ({"type": "latency", "attributes": {"latency": 10**30}}, "cannot unmarshal number"),
        ({"type": "latency", "attributes": {"jitter": [1]}}, "cannot unmarshal array"),
        ({"type": "latency", "attributes": "x"}, "cannot unmarshal string"),
        ({"type": 1}, "cannot unmarshal number into Go struct field ToxicWrapper.type"),
        ({"type": "latency", "toxicity": "1"}, "cannot unmarshal string"),
        ({"type": "latency", "toxicity": 1e300}, "cannot unmarshal number 1e+300"),
        ({"type": "nope"}, "invalid toxic type"),
        ({"type": ""}, "invalid toxic type"),
    ],
)
def test_bad_toxics_are_400(
    api: httpx.Client, make_proxy: MakeProxy, body: dict[str, object], message: str
) -> None:
    name, port = make_proxy()
    response = api.post(f"/proxies/{name}/toxics", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert response.json()["status"] == 400
    assert api.get(f"/proxies/{name}/toxics").json() == []
    with connect(port) as sock:
        round_trip(sock)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1,2]",
        b'"str"',
        b'{"name": 5}',
        b'{"enabled": "yes", "name": "a", "upstream": "b"}',
    ],
)
def test_bad_proxy_bodies_are_400(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/proxies", content=raw)
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: ")
    assert api.get("/version").status_code == 200


def test_bad_updates_change_nothing(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, _port = make_proxy()
    path = f"/proxies/{name}/toxics"
    api.post(path, json={"type": "slicer", "attributes": {"average_size": 10, "size_variation": 2}})
    response = api.post(f"{path}/slicer_downstream", json={"attributes": {"delay": "x"}})
    assert response.status_code == 400
    assert api.get(f"{path}/slicer_downstream").json()["attributes"] == {
        "average_size": 10,
        "size_variation": 2,
        "delay": 0,
    }
    bad_listen = api.post(f"/proxies/{name}", json={"listen": "nohost.invalid:zz"})
    assert bad_listen.status_code == 500
    assert api.post(f"/proxies/{name}", json={"enabled": 3}).status_code == 400


@builtin_only  # upstream panics on it: latency jitter * 2 overflows rand.Int63n's bound
def test_absurd_values_are_accepted_without_harm(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    path = f"/proxies/{name}/toxics"
    huge = 2**63 - 1
    for body in (
        {"type": "latency", "name": "a", "attributes": {"latency": huge, "jitter": huge}},
        {"type": "slow_close", "name": "b", "attributes": {"delay": huge}},
        {"type": "timeout", "name": "c", "attributes": {"timeout": -5}},
        {"type": "limit_data", "name": "d", "attributes": {"bytes": -(2**63)}},
        {"type": "slicer", "name": "e", "attributes": {"average_size": huge, "delay": huge}},
        {"type": "latency", "name": "f", "toxicity": -3},
    ):
        assert api.post(path, json=body).status_code == 200, body
    with connect(port) as sock:
        sock.sendall(b"x")
    assert api.post("/reset").status_code == 204
    with connect(port) as sock:
        round_trip(sock)


@builtin_only
@pytest.mark.parametrize(
    "attributes",
    [{"average_size": 0}, {"average_size": 10, "size_variation": 11}, {"size_variation": -1}],
)
def test_slicer_values_that_crash_upstream_are_clamped(
    api: httpx.Client, make_proxy: MakeProxy, attributes: dict[str, int]
) -> None:
    """Upstream accepts these and then recurses forever or panics when data flows; the
    built-in accepts them too (same API answer) and clamps them on the data path."""
    name, port = make_proxy()
    response = api.post(
        f"/proxies/{name}/toxics", json={"type": "slicer", "attributes": attributes}
    )
    assert response.status_code == 200, response.text
    with connect(port) as sock:
        round_trip(sock, b"0123456789" * 100)


@builtin_only
def test_negative_bandwidth_holds_data_instead_of_crashing(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    name, port = make_proxy()
    path = f"/proxies/{name}/toxics"
    assert api.post(path, json={"type": "bandwidth", "attributes": {"rate": -1}}).status_code == 200
    with connect(port) as sock:
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(10)
        assert api.delete(f"{path}/bandwidth_downstream").status_code == 204
        assert sock.recv(10) == b"held"
    assert api.get("/version").status_code == 200


def test_garbage_http_does_not_kill_the_server(api: httpx.Client) -> None:
    host, port = api.base_url.host, api.base_url.port
    assert port is not None
    import socket

    for junk in (
        b"\x00\x01\x02\r\n\r\n",
        b"GET\r\n\r\n",
        b"POST /proxies HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(junk)
            # Go answers HTTP/1.1 400; aiohttp says HTTP/1.0 when it cannot parse a version.
            assert re.match(rb"HTTP/1\.[01] 4\d\d ", sock.recv(100))
    assert api.get("/version").status_code == 200
