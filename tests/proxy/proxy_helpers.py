"""Test helpers: small threaded TCP servers and socket utilities."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import pytest

Handler = Callable[[socket.socket], None]
MakeProxy = Callable[..., tuple[str, int]]

#: Run a test only against the built-in server: it checks a deliberate difference from
#: the real Toxiproxy (each one listed in harness/proxy/README.md), e.g. a 400 where the
#: real server crashes.
builtin_only = pytest.mark.parametrize("proxy_server", ["builtin"], indirect=True)


def echo(conn: socket.socket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def discard(conn: socket.socket) -> None:
    while conn.recv(1 << 20):
        pass


class TcpServer:
    """A threaded loopback server; every accepted socket is kept so tests can inspect it."""

    def __init__(self, handler: Handler = echo) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.received = bytearray()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.handler(conn)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self.accepted:
            with contextlib.suppress(OSError):
                conn.close()
        self._thread.join(5)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(1 << 20, size - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    """Everything until EOF; the error that ended the stream, if any (e.g. ECONNRESET)."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            return bytes(data), exc
        if not chunk:
            return bytes(data), None
        data += chunk


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.perf_counter()
    sock.sendall(payload)
    got = recv_exactly(sock, len(payload))
    assert got == payload
    return time.perf_counter() - start
