"""The server process: the API listener, ``-config`` populate, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import time
from pathlib import Path

from harness.proxy import http
from harness.proxy.addr import resolve
from harness.proxy.api import VERSION, Api
from harness.proxy.collection import PopulateError, ProxyCollection
from harness.proxy.metrics import Metrics

log = logging.getLogger("harness.proxy")

READY_MESSAGE = "API HTTP server starting"


class ProxyServer:
    """A Toxiproxy-compatible server running on the current event loop."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 8474,
        *,
        proxy_metrics: bool = False,
        runtime_metrics: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.metrics = Metrics(proxy_metrics, runtime_metrics)
        self.collection = ProxyCollection(self.metrics)
        self.api = Api(self.collection, self.metrics)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def populate_file(self, path: Path) -> None:
        """``-config``: populate proxies from a JSON file; failures are logged, not fatal."""
        try:
            body = path.read_bytes()
        except OSError as exc:
            log.error("could not read config file %s: %s", path, exc)
            return
        try:
            proxies = await self.collection.populate_json(body)
        except PopulateError as exc:
            log.error("populating proxies from %s failed: %s", path, exc.message)
            return
        log.info("populated %d proxies from %s", len(proxies), path)

    async def start(self) -> None:
        host, port = await resolve(f"{self.host}:{self.port}")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = await asyncio.start_server(
            self._client, host or "0.0.0.0", port, family=family, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.host = host or "0.0.0.0"
        ready = {
            "level": "info",
            "host": self.host,
            "port": self.port,
            "address": f"{self.host}:{self.port}",
            "version": VERSION,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "message": READY_MESSAGE,
        }
        print(json.dumps(ready), file=sys.stderr, flush=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            await http.serve(reader, writer, self.api.handle)
        finally:
            self._clients.discard(writer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._clients):
            writer.close()
        self.collection.stop_all()
        await asyncio.sleep(0)


async def run(server: ProxyServer, config: Path | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    if config is not None:
        await server.populate_file(config)
    await server.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.close()
