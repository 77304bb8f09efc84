"""Fixtures: one proxy server per session (ours, as a subprocess), an API client that
deletes every proxy after each test, and loopback upstream servers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.proxy.launcher import ToxiproxyServer
from tests.proxy.proxy_helpers import MakeProxy, TcpServer, echo

_names = itertools.count()


@pytest.fixture(scope="session")
def proxy_server() -> Iterator[ToxiproxyServer]:
    server = ToxiproxyServer(builtin=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(proxy_server: ToxiproxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy_server.url, timeout=30) as client:
        try:
            yield client
        finally:
            for name in client.get("/proxies").json():
                client.delete(f"/proxies/{name}")


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make_proxy(api: httpx.Client, echo_server: TcpServer) -> MakeProxy:
    """``make_proxy(upstream=None, **toxics_before)`` → (name, listen port)."""

    def make(upstream: str | None = None, **extra: Any) -> tuple[str, int]:
        name = f"p{next(_names)}"
        body = {"name": name, "upstream": upstream or echo_server.address, "listen": "127.0.0.1:0"}
        response = api.post("/proxies", json={**body, **extra})
        assert response.status_code == 201, response.text
        return name, int(response.json()["listen"].rsplit(":", 1)[1])

    return make
