"""The API's request and response, independent of the HTTP server that carries them.

The server is aiohttp.web (:mod:`harness.proxy.server`); :class:`harness.proxy.api.Api`
routes and answers with Go-exact status codes, headers and bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
