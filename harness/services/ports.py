"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Protocol

from harness.errors import ServiceStartError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    The port is released before returning, so another process could take it
    before the caller binds it; callers that pick the port themselves retry
    on "address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackEndpoint:
    """``host``/``port``/``password`` of a service reached on 127.0.0.1 (local processes
    and containers publishing on loopback alike)."""

    _port: int
    _password: str

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self._port

    @property
    def password(self) -> str:
        return self._password


class _RestartablePort(Protocol):
    _port: int

    def logs(self, tail: int = 50) -> str: ...


def start_on_free_port(
    service: _RestartablePort,
    start_once: Callable[[], None],
    *,
    retry: bool,
    port_taken_marker: str,
    attempts: int = 3,
) -> None:
    """Run ``start_once``; if it failed because another process took the port between
    :func:`free_port` and the bind (its log says ``port_taken_marker``) and ``retry``
    is allowed, pick a new free port and try again."""
    tries = attempts if retry else 1
    for attempt in range(tries):
        try:
            start_once()
        except ServiceStartError:
            if attempt + 1 < tries and port_taken_marker in service.logs(20):
                service._port = free_port()  # lost the race for the port: take another
                continue
            raise
        return
