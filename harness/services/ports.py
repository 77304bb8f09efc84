"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket

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
