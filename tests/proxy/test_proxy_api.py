"""Conformance checks 1-14 and 26 of specs/toxiproxy-api.md, over raw HTTP."""

from __future__ import annotations

import socket

import httpx
import pytest

from harness.wait import wait_until
from tests.proxy.proxy_helpers import MakeProxy, TcpServer, connect, recv_until_closed, round_trip


def error_body(message: str, status: int) -> str:
    return f'{{"error":"{message}","status":{status}}}\n'


def assert_api_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.text == error_body(message, status)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


# 1
def test_version_and_empty_proxy_list(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert api.get("/proxies").json() == {}


# 2
def test_create_binds_real_port(api: httpx.Client, echo_server: TcpServer) -> None:
    body = {"name": "c2", "upstream": echo_server.address, "listen": "127.0.0.1:0"}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201
    data = response.json()
    assert list(data) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    assert data["enabled"] is True and data["toxics"] == []
    host, port = data["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    with connect(int(port)) as sock:
        round_trip(sock, b"hello")
    assert api.get("/proxies").json() == {"c2": data}


# 3
def test_localhost_is_resolved_and_disabled_keeps_raw_listen(api: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    body = {"name": "c3", "upstream": "127.0.0.1:1", "listen": f"localhost:{free}"}
    assert api.post("/proxies", json=body).json()["listen"] == f"127.0.0.1:{free}"
    assert api.delete("/proxies/c3").status_code == 204
    response = api.post("/proxies", json={**body, "enabled": False})
    assert response.status_code == 201
    assert response.json()["listen"] == f"localhost:{free}"
    assert response.json()["enabled"] is False
    assert port_refuses(free)


# 4
def test_create_conflicts_and_missing_fields(api: httpx.Client) -> None:
    body = {"name": "c4", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}
    port = int(api.post("/proxies", json=body).json()["listen"].rsplit(":", 1)[1])
    assert_api_error(api.post("/proxies", json=body), 409, "proxy already exists")
    assert_api_error(api.post("/proxies", json={}), 400, "missing required field: name")
    assert_api_error(
        api.post("/proxies", json={"upstream": "x:1"}), 400, "missing required field: name"
    )
    assert_api_error(
        api.post("/proxies", json={"name": "n"}), 400, "missing required field: upstream"
    )
    taken = api.post(
        "/proxies", json={"name": "c4b", "upstream": "127.0.0.1:1", "listen": f"127.0.0.1:{port}"}
    )
    assert taken.status_code == 500
    assert "address already in use" in taken.json()["error"]
    assert taken.json()["status"] == 500
    assert "c4b" not in api.get("/proxies").json()


# 5
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found"),
        ("GET", "/proxies/nope/toxics", None, 404, "proxy not found"),
        ("POST", "/proxies", b"", 400, "bad request body: EOF"),
        ("POST", "/proxies", b"{", 400, "bad request body: unexpected EOF"),
    ],
)
def test_error_body_format(
    api: httpx.Client, method: str, path: str, body: bytes | None, status: int, message: str
) -> None:
    response = api.request(method, path, content=body)
    assert_api_error(response, status, message)


# 6
def test_middleware_and_unmatched_routes(api: httpx.Client) -> None:
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert browser.status_code == 403
    assert browser.text == "User agent not allowed\n"
    response = api.get("/proxies")
    assert len(response.headers["x-toxiproxy-request-id"]) == 20
    assert (
        response.headers["x-toxiproxy-request-id"]
        != api.get("/version").headers["x-toxiproxy-request-id"]
    )
    missing = api.get("/nope")
    assert missing.status_code == 404 and missing.text == "404 page not found\n"
    assert api.get("/proxies/").status_code == 404
    wrong = api.put("/proxies")
    assert wrong.status_code == 405 and wrong.content == b""
    assert api.get("/metrics").status_code == 404  # metrics are off unless asked for


# 7
def test_get_update_delete_proxy(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    assert api.get(f"/proxies/{name}").json()["listen"] == f"127.0.0.1:{port}"
    for method in ("POST", "PATCH"):
        response = api.request(method, f"/proxies/{name}", json={"name": "ignored"})
        assert response.status_code == 200
        assert response.json()["name"] == name
    assert api.delete(f"/proxies/{name}").status_code == 204
    assert api.get(f"/proxies/{name}").status_code == 404
    assert api.post(f"/proxies/{name}", json={}).status_code == 404
    assert api.delete(f"/proxies/{name}").status_code == 404
    assert port_refuses(port)


# 8
def test_disable_refuses_and_closes_then_enable_keeps_port(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    name, port = make_proxy()
    with connect(port) as sock:
        round_trip(sock)
        response = api.post(f"/proxies/{name}", json={"enabled": False})
        assert response.status_code == 200 and response.json()["enabled"] is False
        assert port_refuses(port)
        data, _error = recv_until_closed(sock)  # EOF or reset
        assert data == b""
    response = api.post(f"/proxies/{name}", json={"enabled": True})
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    with connect(port) as sock:
        round_trip(sock)


# 9
def test_changing_upstream_drops_connections_and_no_change_keeps_them(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    name, port = make_proxy()
    other = TcpServer()
    try:
        with connect(port) as sock:
            round_trip(sock)
            current = api.get(f"/proxies/{name}").json()
            same = {"listen": f"localhost:{port}", "upstream": current["upstream"]}
            assert api.post(f"/proxies/{name}", json=same).status_code == 200
            round_trip(sock)  # same address written differently: no restart
            response = api.patch(f"/proxies/{name}", json={"upstream": other.address})
            assert response.json()["upstream"] == other.address
            assert recv_until_closed(sock)[0] == b""
        with connect(port) as sock:
            round_trip(sock)
        wait_until(lambda: other.accepted, 10, describe="the new upstream to get the connection")
    finally:
        other.close()


# 10
def test_populate(api: httpx.Client, echo_server: TcpServer) -> None:
    entry = {"name": "pop1", "upstream": echo_server.address, "listen": "127.0.0.1:0"}
    response = api.post("/populate", json=[entry])
    assert response.status_code == 201
    created = response.json()["proxies"]
    assert [p["name"] for p in created] == ["pop1"]
    listen = created[0]["listen"]
    api.post("/proxies/pop1/toxics", json={"type": "latency", "attributes": {"latency": 1}})
    again = api.post("/populate", json=[{**entry, "listen": listen}])
    assert again.status_code == 201
    assert [t["name"] for t in again.json()["proxies"][0]["toxics"]] == ["latency_downstream"]
    bad = api.post(
        "/populate", json=[{"name": "pop2", "upstream": "127.0.0.1:1"}, {"name": "pop3"}]
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "missing required field: upstream at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert sorted(api.get("/proxies").json()) == ["pop1"]
    assert api.post("/populate", json=[]).json() == {"proxies": None}
    assert api.post("/populate", json={"name": "x"}).status_code == 400


def test_populate_bind_error_keeps_earlier_entries(api: httpx.Client) -> None:
    first = api.post(
        "/proxies", json={"name": "hold", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}
    )
    taken = first.json()["listen"]
    response = api.post(
        "/populate",
        json=[
            {"name": "ok1", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
            {"name": "clash", "upstream": "127.0.0.1:1", "listen": taken},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert "address already in use" in body["error"]
    assert [p["name"] for p in body["proxies"]] == ["ok1"]


# 11
def test_toxic_defaults_and_listing(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, _port = make_proxy()
    response = api.post(f"/proxies/{name}/toxics", json={"type": "latency"})
    assert response.status_code == 200
    assert response.text == (
        '{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream",'
        '"type":"latency","stream":"downstream","toxicity":1}'
    )
    assert api.get(f"/proxies/{name}/toxics").json() == [response.json()]
    assert api.get(f"/proxies/{name}/toxics/latency_downstream").json() == response.json()
    up = api.post(
        f"/proxies/{name}/toxics",
        json={
            "type": "bandwidth",
            "Stream": "UpStream",
            "toxicity": 0.5,
            "Attributes": {"Rate": 7},
        },
    ).json()
    assert up == {
        "attributes": {"rate": 7},
        "name": "bandwidth_UpStream",
        "type": "bandwidth",
        "stream": "UpStream",
        "toxicity": 0.5,
    }
    # upstream toxics are listed first
    names = [t["name"] for t in api.get(f"/proxies/{name}/toxics").json()]
    assert names == ["bandwidth_UpStream", "latency_downstream"]
    assert [t["name"] for t in api.get(f"/proxies/{name}").json()["toxics"]] == names


# 12
def test_toxic_conflicts_and_validation(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, _port = make_proxy()
    path = f"/proxies/{name}/toxics"
    api.post(path, json={"type": "latency", "name": "t"})
    assert_api_error(
        api.post(path, json={"type": "latency", "name": "t", "stream": "upstream"}),
        409,
        "toxic already exists",
    )
    assert_api_error(
        api.post(path, json={"type": "latency", "stream": "sideways"}),
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    assert_api_error(api.post(path, json={"type": "nope"}), 400, "invalid toxic type")
    assert api.post(path, json={"type": "noop"}).status_code == 200
    assert_api_error(
        api.post("/proxies/nope/toxics", json={"type": "noop"}), 404, "proxy not found"
    )


# 13
def test_toxic_update_is_partial(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, _port = make_proxy()
    path = f"/proxies/{name}/toxics"
    api.post(
        path, json={"type": "latency", "toxicity": 0.5, "attributes": {"latency": 1, "jitter": 2}}
    )
    updated = api.patch(f"{path}/latency_downstream", json={"attributes": {"latency": 1000}})
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"latency": 1000, "jitter": 2}
    assert updated.json()["toxicity"] == 0.5
    posted = api.post(f"{path}/latency_downstream", json={"toxicity": 1})
    assert posted.json()["toxicity"] == 1 and posted.json()["attributes"]["latency"] == 1000
    assert_api_error(api.post(f"{path}/missing", json={}), 404, "toxic not found")
    assert_api_error(api.post("/proxies/nope/toxics/x", json={}), 404, "proxy not found")


# 14
def test_toxic_delete_and_reset(api: httpx.Client, make_proxy: MakeProxy) -> None:
    name, port = make_proxy()
    other, _ = make_proxy()
    path = f"/proxies/{name}/toxics"
    api.post(path, json={"type": "latency", "attributes": {"latency": 1}})
    assert api.delete(f"{path}/latency_downstream").status_code == 204
    assert_api_error(api.delete(f"{path}/latency_downstream"), 404, "toxic not found")
    api.post(path, json={"type": "noop"})
    api.post(f"/proxies/{other}", json={"enabled": False})
    with connect(port) as sock:
        round_trip(sock)
        response = api.post("/reset")
        assert response.status_code == 204 and response.content == b""
        round_trip(sock)  # a healthy connection survives the reset
    assert api.get(f"/proxies/{name}").json()["toxics"] == []
    assert api.get(f"/proxies/{other}").json()["enabled"] is True


# 26
def test_toxics_added_while_disabled_survive_enable(
    api: httpx.Client, make_proxy: MakeProxy
) -> None:
    name, port = make_proxy()
    api.post(f"/proxies/{name}", json={"enabled": False})
    api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 150}})
    api.post(f"/proxies/{name}", json={"enabled": True})
    assert len(api.get(f"/proxies/{name}/toxics").json()) == 1
    with connect(port) as sock:
        assert round_trip(sock) >= 0.145
