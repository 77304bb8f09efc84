"""Forward received OTLP request bodies, unchanged, to another OTLP/HTTP endpoint (Jaeger).

A bounded queue and one background thread: :meth:`Forwarder.submit` never
blocks (a full queue drops the request and counts it) and never raises;
delivery errors are counted and logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import httpx

from harness.collector.wire import RawRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwarderStats:
    forwarded: int = 0  # requests the endpoint accepted
    dropped: int = 0  # requests lost to a full queue or to the stop deadline
    errors: int = 0  # requests the endpoint refused or never answered
    last_error: str = ""
    spans: int = 0  # spans in the accepted requests
    lost_spans: int = 0  # spans in dropped and failed requests


class Forwarder:
    """Posts bodies to ``<endpoint>/v1/traces`` from a background thread."""

    def __init__(
        self,
        endpoint: str,
        *,
        max_queue: int = 1000,
        timeout: float = 5.0,
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/traces"
        self._queue: queue.Queue[tuple[RawRequest, int]] = queue.Queue(maxsize=max_queue)
        self._timeout = timeout
        self._stopping = threading.Event()
        self._drain_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._forwarded = 0
        self._dropped = 0
        self._errors = 0
        self._last_error = ""
        self._spans = 0
        self._lost_spans = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"otlp-forwarder→{self.url}", daemon=True
        )
        self._thread.start()

    def submit(self, request: RawRequest, spans: int = 0) -> bool:
        """Queue ``request`` (holding ``spans`` spans, for the counts); ``False`` (and
        counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait((request, spans))
        except queue.Full:
            with self._lock:
                self._dropped += 1
                self._lost_spans += spans
                dropped = self._dropped
            if dropped == 1:
                log.warning("forward queue to %s is full; dropping requests", self.url)
            return False
        return True

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Deliver what is queued for up to ``drain_timeout`` s, then stop; idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._drain_deadline = time.monotonic() + drain_timeout
        self._stopping.set()
        thread.join(drain_timeout + self._timeout + 1.0)
        self._thread = None
        with self._lock:
            while not self._queue.empty():
                _, spans = self._queue.get_nowait()
                self._dropped += 1
                self._lost_spans += spans

    @property
    def stats(self) -> ForwarderStats:
        with self._lock:
            return ForwarderStats(
                self._forwarded,
                self._dropped,
                self._errors,
                self._last_error,
                self._spans,
                self._lost_spans,
            )

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout, trust_env=False) as client:
            while True:
                if self._stopping.is_set() and time.monotonic() >= self._drain_deadline:
                    return
                try:
                    request, spans = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._stopping.is_set():
                        return
                    continue
                self._send(client, request, spans)

    def _send(self, client: httpx.Client, request: RawRequest, spans: int) -> None:
        headers = {"Content-Type": request.content_type}
        if request.content_encoding:
            headers["Content-Encoding"] = request.content_encoding
        try:
            response = client.post(self.url, content=request.body, headers=headers)
        except Exception as exc:  # any failure is counted, never kills the thread
            self._failed(f"{type(exc).__name__}: {exc}", spans)
            return
        if response.is_success:
            with self._lock:
                self._forwarded += 1
                self._spans += spans
        else:
            self._failed(f"HTTP {response.status_code}: {response.text[:200]}", spans)

    def _failed(self, error: str, spans: int) -> None:
        with self._lock:
            self._errors += 1
            self._lost_spans += spans
            self._last_error = error
            first = self._errors == 1
        # The first failure is a warning; later ones would flood a long run's log.
        (log.warning if first else log.debug)("forwarding to %s failed: %s", self.url, error)
