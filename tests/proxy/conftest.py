"""Fixtures: one proxy server per session and kind — the built-in (``python -m
harness.proxy``) and the real Toxiproxy built by ``make peers`` — an API client that
deletes every proxy after each test, and loopback upstream servers.

Every test that takes ``proxy_server``/``api``/``make_proxy`` runs against both
servers (ids ``builtin`` and ``real``). Without the real binary the ``real`` runs are
skipped only where Go cannot build it, and fail elsewhere. A test that checks a deliberate
difference of the built-in (documented in ``harness/proxy/README.md``) is decorated
with ``proxy_helpers.builtin_only``.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness import peers
from harness.proxy.launcher import ToxiproxyServer
from tests.peer_helpers import missing_peer
from tests.proxy.proxy_helpers import MakeProxy, TcpServer, echo

_names = itertools.count()


SERVER_KINDS = ("builtin", "real")


def real_toxiproxy_binary() -> str:
    """The real ``toxiproxy-server``: ``.peers/bin`` first, then PATH (see missing_peer)."""
    found = peers.peer_binary(peers.TOXIPROXY)
    if found is not None:
        return str(found)
    on_path = shutil.which(peers.TOXIPROXY)
    if on_path:
        return on_path
    return missing_peer(peers.missing_hint(peers.TOXIPROXY))


def new_server(kind: str, extra_args: tuple[str, ...] = ()) -> ToxiproxyServer:
    if kind == "builtin":
        return ToxiproxyServer(builtin=True, extra_args=extra_args)
    return ToxiproxyServer(binary=real_toxiproxy_binary(), extra_args=extra_args)


@pytest.fixture(scope="session", params=SERVER_KINDS)
def proxy_server(request: pytest.FixtureRequest) -> Iterator[ToxiproxyServer]:
    with new_server(request.param) as server:
        yield server


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
