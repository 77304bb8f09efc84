"""The Toxiproxy 2.12 HTTP API: routes, middleware and handlers."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.proxy.collection import PopulateError, ProxyCollection
from harness.proxy.errors import ApiError
from harness.proxy.gojson import dumps
from harness.proxy.http import Request, Response
from harness.proxy.metrics import Metrics

log = logging.getLogger("harness.proxy")

VERSION = "2.12.0"
HANDLER_TIMEOUT = 25.0
TIMEOUT_BODY = b"<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>"
JSON = ("Content-Type", "application/json")
PLAIN = ("Content-Type", "text/plain; charset=utf-8")
NOSNIFF = ("X-Content-Type-Options", "nosniff")

Params = dict[str, str]
Route = Callable[[Request, Params], Awaitable[Response]]


class RequestIds:
    """xid-style ids: 4 bytes time, 3 machine, 2 pid, 3 counter; base32hex, 20 chars."""

    def __init__(self) -> None:
        self._machine = random.randbytes(3)
        self._pid = (os.getpid() & 0xFFFF).to_bytes(2, "big")
        self._counter = itertools.count(random.randrange(1 << 24))

    def next(self) -> str:
        raw = (
            int(time.time()).to_bytes(4, "big")
            + self._machine
            + self._pid
            + (next(self._counter) & 0xFFFFFF).to_bytes(3, "big")
        )
        return base64.b32hexencode(raw).decode().rstrip("=").lower()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, dumps(value).encode(), [JSON])


def error_response(error: ApiError) -> Response:
    body = dumps({"error": error.message, "status": error.status}) + "\n"
    return Response(error.status, body.encode(), [PLAIN, NOSNIFF])


class Api:
    def __init__(self, collection: ProxyCollection, metrics: Metrics) -> None:
        self.collection = collection
        self.metrics = metrics
        self.ids = RequestIds()
        self.routes: list[tuple[list[str], dict[str, Route]]] = [
            (["reset"], {"POST": self.reset}),
            (["proxies"], {"GET": self.proxy_index, "POST": self.proxy_create}),
            (["populate"], {"POST": self.populate}),
            (
                ["proxies", "{proxy}"],
                {
                    "GET": self.proxy_show,
                    "POST": self.proxy_update,
                    "PATCH": self.proxy_update,
                    "DELETE": self.proxy_delete,
                },
            ),
            (
                ["proxies", "{proxy}", "toxics"],
                {"GET": self.toxic_index, "POST": self.toxic_create},
            ),
            (
                ["proxies", "{proxy}", "toxics", "{toxic}"],
                {
                    "GET": self.toxic_show,
                    "POST": self.toxic_update,
                    "PATCH": self.toxic_update,
                    "DELETE": self.toxic_delete,
                },
            ),
            (["version"], {"GET": self.version}),
        ]
        if metrics.enabled:
            self.routes.append((["metrics"], {"GET": self.metrics_page}))

    # -- dispatch -----------------------------------------------------------------
    def _match(self, path: str) -> tuple[dict[str, Route], Params] | None:
        segments = path.split("/")[1:] if path.startswith("/") else None
        if segments is None:
            return None
        for pattern, methods in self.routes:
            if len(pattern) != len(segments):
                continue
            params: Params = {}
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return methods, params
        return None

    async def handle(self, request: Request) -> Response:
        match = self._match(request.path)
        if match is None:
            return Response(404, b"404 page not found\n", [PLAIN, NOSNIFF])
        methods, params = match
        route = methods.get(request.method)
        if route is None:
            return Response(405)
        request_id = ("X-Toxiproxy-Request-Id", self.ids.next())
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return Response(403, b"User agent not allowed\n", [request_id, PLAIN, NOSNIFF])
        try:
            response = await asyncio.wait_for(route(request, params), HANDLER_TIMEOUT)
        except ApiError as exc:
            response = error_response(exc)
        except TimeoutError:
            response = Response(503, TIMEOUT_BODY, [("Content-Type", "text/html; charset=utf-8")])
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            response = error_response(ApiError(str(exc) or type(exc).__name__, 500))
        response.headers.insert(0, request_id)
        return response

    # -- handlers -------------------------------------------------------------------
    async def version(self, request: Request, params: Params) -> Response:
        body = f'{{"version": "{VERSION}"}}\n'.encode()
        return Response(200, body, [("Content-Type", "application/json;charset=utf-8")])

    async def proxy_index(self, request: Request, params: Params) -> Response:
        proxies = self.collection.proxies
        return json_response({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, request: Request, params: Params) -> Response:
        proxy = await self.collection.create_json(request.body)
        return json_response(proxy.to_json(), 201)

    async def populate(self, request: Request, params: Params) -> Response:
        try:
            proxies = await self.collection.populate_json(request.body)
        except PopulateError as exc:
            listed = [proxy.to_json() for proxy in exc.created] or None
            body = {"error": exc.message, "status": exc.status, "proxies": listed}
            return json_response(body, exc.status)
        return json_response({"proxies": [proxy.to_json() for proxy in proxies] or None}, 201)

    async def proxy_show(self, request: Request, params: Params) -> Response:
        return json_response(self.collection.get(params["proxy"]).to_json())

    async def proxy_update(self, request: Request, params: Params) -> Response:
        proxy = await self.collection.update_json(params["proxy"], request.body)
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: Request, params: Params) -> Response:
        self.collection.delete(params["proxy"])
        return Response(204)

    async def reset(self, request: Request, params: Params) -> Response:
        await self.collection.reset()
        return Response(204)

    async def toxic_index(self, request: Request, params: Params) -> Response:
        return json_response(self.collection.get(params["proxy"]).toxics.to_json())

    async def toxic_create(self, request: Request, params: Params) -> Response:
        toxics = self.collection.get(params["proxy"]).toxics
        return json_response(toxics.add_json(request.body).to_json())

    async def toxic_show(self, request: Request, params: Params) -> Response:
        toxics = self.collection.get(params["proxy"]).toxics
        return json_response(toxics.find(params["toxic"]).to_json())

    async def toxic_update(self, request: Request, params: Params) -> Response:
        toxics = self.collection.get(params["proxy"]).toxics
        return json_response(toxics.update_json(params["toxic"], request.body).to_json())

    async def toxic_delete(self, request: Request, params: Params) -> Response:
        self.collection.get(params["proxy"]).toxics.remove(params["toxic"])
        return Response(204)

    async def metrics_page(self, request: Request, params: Params) -> Response:
        content_type = ("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        return Response(200, self.metrics.render().encode(), [content_type])
