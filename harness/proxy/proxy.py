"""A proxy: a listener on ``listen`` that forwards every connection to ``upstream``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from harness.proxy.addr import display, resolve
from harness.proxy.connection import Connection
from harness.proxy.errors import ApiError, go_os_error
from harness.proxy.link import Side
from harness.proxy.metrics import Metrics
from harness.proxy.toxic_collection import ToxicCollection

log = logging.getLogger("harness.proxy")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if (not host or ":" in host) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host or "::", port))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, metrics: Metrics) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self.connections: set[Connection] = set()
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            # Toxiproxy 2.12 marshals its exported Logger field too (an empty struct).
            "Logger": {},
            "toxics": self.toxics.to_json(),
        }

    async def start(self) -> None:
        """Listen; ``listen`` becomes the bound address. Errors are 500s with Go's text."""
        if self.enabled:
            return
        try:
            host, port = await resolve(self.listen)
        except ValueError as exc:  # net.Listen: OpError without an address
            raise ApiError(f"listen tcp: {exc}", 500) from None
        try:
            sock = _bind(host, port)
        except OSError as exc:
            raise go_os_error("listen", display(host, port), exc) from None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, sock=sock)
        bound = sock.getsockname()
        self.listen = display("" if not host else str(bound[0]), int(bound[1]))
        self.enabled = True
        log.info("proxy %s listening on %s, upstream %s", self.name, self.listen, self.upstream)

    def _accept(self) -> Side:
        connection = Connection(self)
        self.connections.add(connection)
        return connection.client

    def stop(self) -> None:
        """Close the listener and every open connection; toxics stay configured."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.enabled = False
        for connection in list(self.connections):
            connection.abort()

    def connection_done(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self.toxics.detach(connection)
        for link in connection.links:
            self._metrics.record(
                self.name, self.listen, self.upstream, link.direction, link.received, link.sink.sent
            )

    async def differs(self, listen: str, upstream: str) -> bool:
        try:
            host, port = await resolve(listen)
        except ValueError as exc:  # net.ResolveTCPAddr's own error
            raise ApiError(str(exc), 500) from None
        return self.listen != display(host, port) or self.upstream != upstream

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        if await self.differs(listen, upstream):
            self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled != self.enabled:
            if enabled:
                await self.start()
            else:
                self.stop()

    async def close(self) -> None:
        self.stop()
        if self._server is not None:  # pragma: no cover - stop() cleared it
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
