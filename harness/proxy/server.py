"""The server process: the API listener (aiohttp.web on the proxy's own loop),
``-config`` populate, and a clean shutdown."""

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

from aiohttp import web
from multidict import CIMultiDict

from harness.proxy import http
from harness.proxy.addr import resolve
from harness.proxy.api import VERSION, Api
from harness.proxy.collection import PopulateError, ProxyCollection
from harness.proxy.metrics import Metrics

log = logging.getLogger("harness.proxy")

READY_MESSAGE = "API HTTP server starting"
MAX_BODY = 16 << 20


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
        self._runner: web.AppRunner | None = None

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
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError:
            sock.close()
            raise
        # One catch-all route: Api does the routing, so unmatched paths and methods get
        # gorilla/mux's exact 404 and 405 answers rather than aiohttp's.
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, shutdown_timeout=0.5).start()
        self.port = int(sock.getsockname()[1])
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

    async def _handle(self, request: web.Request) -> web.Response:
        ours = http.Request(
            request.method,
            request.path,
            {name.lower(): value for name, value in request.headers.items()},
            await request.read(),
        )
        answer = await self.api.handle(ours)
        response = web.Response(
            status=answer.status,
            body=answer.body if answer.body else None,
            headers=CIMultiDict(answer.headers),
        )
        if not answer.body and answer.status != 204:
            response.headers["Content-Length"] = "0"
        return response

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        self.collection.stop_all()
        if runner is not None:
            await runner.cleanup()


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
