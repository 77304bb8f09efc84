"""Probes: one short exchange with a service, directly or through its proxy.

A probe is how a network or service fault shows it bit without any server-side counter,
so the evidence is the same with the built-in Toxiproxy-compatible server and the real
``toxiproxy-server``: the connection is refused, reset, closed or black-holed, or the
answer comes late, in slices, or slowly. Redis gets ``AUTH``/``ECHO`` (any reply counts,
even an error), PostgreSQL an ``SSLRequest`` (answered with one byte before any auth).
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

#: PostgreSQL's SSLRequest: length 8, code 80877103; the server answers ``S`` or ``N``.
_PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass(frozen=True)
class Endpoint:
    """Where a probe connects, and which protocol it speaks there."""

    service: str  # "redis" | "postgres"
    host: str
    port: int
    password: str = ""


@dataclass(frozen=True)
class ProbeResult:
    """``outcome``: ``ok`` (a full reply), ``refused``, ``reset``, ``closed`` (EOF before a
    reply) or ``timeout`` (no reply in time). ``chunks`` counts the reads a reply took."""

    outcome: str
    elapsed_s: float
    received: int = 0
    chunks: int = 0
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome != "ok"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "elapsed_s": round(self.elapsed_s, 4),
            "received": self.received,
            "chunks": self.chunks,
        }
        if self.error:
            out["error"] = self.error
        return out


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def exchanges(endpoint: Endpoint, payload: int = 0) -> list[tuple[bytes, int]]:
    """The requests to send, each with how many reply bytes to wait for. Only the last is
    measured. Redis gets ``AUTH`` first when a volume is probed (so its short reply is not
    counted as a slice), else one pipelined ``AUTH`` + ``ECHO`` whose first reply byte
    counts; PostgreSQL one ``SSLRequest``."""
    if endpoint.service == "postgres":
        return [(_PG_SSL_REQUEST, 1)]
    auth = _resp(b"AUTH", endpoint.password.encode()) if endpoint.password else b""
    echo = _resp(b"ECHO", b"x" * payload)
    if payload and auth:
        return [(auth, len(b"+OK\r\n")), (echo, payload)]
    return [(auth + echo, max(payload, 1))]


def probe(endpoint: Endpoint, *, payload: int = 0, timeout: float = 1.0) -> ProbeResult:
    """One measured exchange with ``endpoint``; never raises for network errors."""
    steps = exchanges(endpoint, payload)
    started = time.monotonic()
    received = chunks = 0

    def result(outcome: str, error: str = "") -> ProbeResult:
        return ProbeResult(outcome, time.monotonic() - started, received, chunks, error)

    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except ConnectionRefusedError:
        return result("refused")
    except TimeoutError:
        return result("timeout", "connect timed out")
    except OSError as exc:
        return result("refused", str(exc))
    deadline = started + timeout
    try:
        with sock:
            for request, expected in steps:
                started = time.monotonic()  # the last exchange is the one measured
                received = chunks = 0
                sock.settimeout(max(0.05, deadline - started))
                sock.sendall(request)
                while received < expected:
                    data = sock.recv(65536)
                    if not data:
                        return result("closed")
                    received += len(data)
                    chunks += 1
    except TimeoutError:
        return result("timeout")
    except OSError as exc:  # ConnectionResetError and the like
        return result("reset", str(exc))
    return result("ok")
