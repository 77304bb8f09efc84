"""The OTLP/HTTP trace receiver: ``POST /v1/traces`` on loopback, in a background thread."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from harness.collector import wire
from harness.collector.errors import MalformedRequest, RequestTooLarge, UnsupportedMediaType
from harness.errors import HarnessConfigError

log = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"

#: Called once per decoded request with the raw body (for forwarding); returns the answer.
RequestSink = Callable[[ExportTraceServiceRequest, wire.RawRequest], ExportTraceServiceResponse]

# google.rpc.Code values for the Status body of error responses.
_RPC_INVALID_ARGUMENT = 3
_RPC_NOT_FOUND = 5
_RPC_UNIMPLEMENTED = 12
_RPC_INTERNAL = 13

_ERRORS: tuple[tuple[type[Exception], HTTPStatus], ...] = (
    (MalformedRequest, HTTPStatus.BAD_REQUEST),
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (RequestTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
)


class OtlpReceiver:
    """Serves ``POST /v1/traces`` (protobuf or JSON, maybe gzip); hands requests to ``sink``.

    ``port=0`` picks a free port; :attr:`endpoint` is what pipeline processes
    get as ``OTEL_EXPORTER_OTLP_ENDPOINT``. Binds loopback addresses only.
    """

    def __init__(self, sink: RequestSink, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback(host):
            raise HarnessConfigError(
                f"the trace receiver binds loopback only, got host {host!r}; use 127.0.0.1"
            )
        self.sink = sink
        self.host = host
        self.requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.requests = 0
        self.rejected = 0

    def start(self) -> None:
        """Bind and serve from a background thread; a no-op when already running."""
        if self._server is not None:
            return
        server = _Server((self.host, self.requested_port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"otlp-receiver:{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and join the threads; idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()  # joins in-flight request threads
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise HarnessConfigError("the trace receiver is not started; call start() first")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (the OTLP base URL, without ``/v1/traces``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _count(self, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self.requests += 1
            else:
                self.rejected += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins request threads
    block_on_close = True
    # Every pipeline process exports on a connection of its own per request (HTTP/1.0):
    # with socketserver's backlog of 5, a burst of exports while the accept loop waits for
    # the GIL overflowed it (the kernel's ListenOverflows counter rose during a CI run),
    # and each dropped SYN costs its exporter a 1 s retransmission (then 3 s, 7 s).
    request_queue_size = 128
    receiver: OtlpReceiver

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at stop()
    timeout = 30  # a stalled client cannot hold stop() forever
    server_version = "notepipe-otlp-receiver"

    def do_POST(self) -> None:
        if self._path() != TRACES_PATH:
            self._error(HTTPStatus.NOT_FOUND, _RPC_NOT_FOUND, f"no such path {self._path()!r}")
            return
        media = wire.media_type(self.headers.get("Content-Type"))
        receiver = self.server.receiver
        try:
            raw = self._read_body()  # always read: closing on unread data resets the client
            wire.check_media_type(media)
            request = wire.parse_body(
                wire.decompress(raw, self.headers.get("Content-Encoding")), media
            )
        except (MalformedRequest, UnsupportedMediaType, RequestTooLarge) as exc:
            receiver._count(ok=False)
            status = next(code for kind, code in _ERRORS if isinstance(exc, kind))
            log.warning("rejected OTLP request from %s: %s", self.client_address[0], exc)
            self._error(status, _RPC_INVALID_ARGUMENT, str(exc), media)
            return
        raw_request = wire.RawRequest(
            raw, self.headers.get("Content-Type", media), self.headers.get("Content-Encoding", "")
        )
        try:
            response = receiver.sink(request, raw_request)
        except Exception as exc:
            log.exception("the trace collector failed to store a request")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, _RPC_INTERNAL, repr(exc), media)
            return
        receiver._count(ok=True)
        self._send(HTTPStatus.OK, wire.encode_response(response, media), media)

    def do_GET(self) -> None:
        self._not_post()

    def do_PUT(self) -> None:
        self._not_post()

    def do_DELETE(self) -> None:
        self._not_post()

    def do_PATCH(self) -> None:
        self._not_post()

    def _not_post(self) -> None:
        if self._path() == TRACES_PATH:
            self._error(
                HTTPStatus.METHOD_NOT_ALLOWED, _RPC_UNIMPLEMENTED, f"use POST {TRACES_PATH}"
            )
        else:
            self._error(HTTPStatus.NOT_FOUND, _RPC_NOT_FOUND, f"no such path {self._path()!r}")

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise MalformedRequest("Content-Length (or chunked Transfer-Encoding) is required")
        try:
            length = int(length_header)
        except ValueError as exc:
            raise MalformedRequest(f"bad Content-Length {length_header!r}") from exc
        if length < 0:
            raise MalformedRequest(f"bad Content-Length {length_header!r}")
        if length > wire.MAX_BODY_BYTES:
            raise RequestTooLarge(f"body of {length} bytes exceeds {wire.MAX_BODY_BYTES}")
        body = self.rfile.read(length)
        if len(body) != length:
            raise MalformedRequest(f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError as exc:
                raise MalformedRequest(f"bad chunk size {line!r}") from exc
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > wire.MAX_BODY_BYTES:
                raise RequestTooLarge(f"chunked body exceeds {wire.MAX_BODY_BYTES} bytes")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _error(self, status: HTTPStatus, rpc_code: int, message: str, media: str = "") -> None:
        body, content_type = wire.encode_status(rpc_code, message, media)
        self._send(status, body, content_type)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "POST")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
