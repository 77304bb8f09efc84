"""One accepted client connection: dial the upstream, then run two links."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from harness.proxy.addr import split_host_port
from harness.proxy.link import Link, Side
from harness.proxy.toxics import ResetPeerToxic

if TYPE_CHECKING:
    from harness.proxy.proxy import Proxy

log = logging.getLogger("harness.proxy")


class Connection:
    """Client ↔ proxy ↔ upstream. Ends when both sockets are closed."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client = Side(self._client_made, self._side_lost)
        self.upstream = Side(lambda side: None, self._side_lost)
        self.links: list[Link] = []
        self._dial: asyncio.Task[None] | None = None
        self._done = False

    def _client_made(self, side: Side) -> None:
        side.pause_reading()  # data waits in the kernel until the upstream is connected
        self._dial = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_host_port(self.proxy.upstream)
            await loop.create_connection(lambda: self.upstream, host or "localhost", port)
        except (OSError, ValueError) as exc:
            log.info(
                "proxy %s: upstream %s unreachable: %s", self.proxy.name, self.proxy.upstream, exc
            )
            self.client.close()  # the client sees EOF, like upstream's server
            return
        finally:
            self._dial = None
        if self.client.lost or self._done:
            self.upstream.abort()
            return
        toxics = self.proxy.toxics
        up = Link("upstream", self.client, self.upstream, toxics.chain("upstream"))
        down = Link("downstream", self.upstream, self.client, toxics.chain("downstream"))
        self.links = [up, down]
        for link in self.links:
            if any(isinstance(stage.wrapper.toxic, ResetPeerToxic) for stage in link.stages):
                self.client.set_linger_zero()
                self.upstream.set_linger_zero()
        toxics.attach(self)
        for link in self.links:
            link.start()
        self.client.resume_reading()

    def _side_lost(self, side: Side) -> None:
        if self._done:
            return
        if self.client.lost and (self.upstream.lost or self.upstream.transport is None):
            if self._dial is not None:
                self._dial.cancel()
            self._finish()
        elif self.upstream.lost and not self.links:
            self.client.close()

    def _finish(self) -> None:
        self._done = True
        for link in self.links:
            link.stop()
        self.proxy.connection_done(self)

    def abort(self) -> None:
        """Drop everything now (proxy disabled or deleted)."""
        if self._dial is not None:
            self._dial.cancel()
        for link in self.links:
            link.stop()
        self.client.abort()
        self.upstream.abort()
        if not self._done:
            self._done = True
            self.proxy.connection_done(self)
