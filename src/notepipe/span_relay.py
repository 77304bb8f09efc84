"""The span relay: a worker's exporting process, beside the forking one.

A fork-per-job worker must not export spans itself. Before it forks any work-horse it
opens a :class:`SpanRelay`: a UNIX datagram socket pair, and a process forked once to
read it. Every span the worker or one of its horses ends is sent at once, as one
datagram (:func:`encode_span`); the relay process gathers them for up to
``OTEL_BSP_SCHEDULE_DELAY`` ms (as the SDK's batch processor would) and exports each batch
on its own long-lived OTLP connection.

Why a process of its own and not a thread of the worker: a worker forks a horse per
job, and every page the worker writes while a horse lives is copied (copy-on-write).
Exporting in the worker touched the same pages anew after every fork: decoding spans,
protobuf, HTTP. ``benchmarks/tracing.py`` measured +1.1 ms of the worker's CPU per job
with a relay thread, +0.2 ms with the spans received but not exported. The relay process
never forks, so each page it writes is copied once. Its lifetime is the worker's: it
exits after exporting what it received, when asked (:meth:`SpanRelay.close`, at the
worker's exit), on SIGTERM, or once its parent is gone (it looks every
``RELAY_PARENT_CHECK_S``), so a worker SIGKILL no longer loses the spans in the batch.

A horse that finds the relay gone (the send fails at once: the receiving end is closed),
or a span too large for a datagram, exports that span itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

log = logging.getLogger(__name__)

#: A sender waits at most this long for room in the socket before exporting itself.
RELAY_SEND_TIMEOUT_S = 2.0
#: The relay exports at most ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` spans per request (the
#: batch span processor's variable and default)...
RELAY_BATCH = 512
#: ... gathered for at most ``OTEL_BSP_SCHEDULE_DELAY`` ms after the first (the SDK's
#: default: 5 s; a SIGKILL of the relay loses them). An export request costs ~1 ms of CPU
#: (HTTP through requests) whatever it carries, and ~0.06-0.1 ms more per span.
RELAY_LINGER_MS = 5000
#: An idle relay looks this often whether its parent (the worker) is still there.
RELAY_PARENT_CHECK_S = 0.5
#: The relay process's name (``/proc/<pid>/comm``, ``ps -o comm``).
RELAY_PROCESS_NAME = b"notepipe-relay"
_RELAY_MAX_DATAGRAM = 1 << 20
_RELAY_STOP = b"\x00stop"
#: A flush request: ``_RELAY_FLUSH`` + its number; answered with the number once what
#: came before it is exported.
_RELAY_FLUSH = b"\x00flush"


class SpanRelay:
    """Ended spans :meth:`send`-t as datagrams (by the opening process and its forked
    children alike) to a relay process, which exports them with ``make_exporter()``
    (called in the relay process)."""

    def __init__(self, make_exporter: Callable[[], SpanExporter], resource: Resource) -> None:
        self.resource = resource
        self._owner = os.getpid()
        self._flush_lock = threading.Lock()
        self._flush_count = 0
        self._exit_code: int | None = None
        receiving, self._send = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._answers, answering = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.settimeout(RELAY_SEND_TIMEOUT_S)
        try:
            self.pid = os.fork()
        except OSError:
            for end in (receiving, self._send, self._answers, answering):
                end.close()
            raise
        if self.pid == 0:  # pragma: no cover - the relay process (measured via subprocesses)
            code = 1
            try:
                self._send.close()
                self._answers.close()
                _RelayLoop(receiving, answering, make_exporter, resource, self._owner).run()
                code = 0
            except BaseException:
                log.exception("span relay: stopped by an error")
            finally:
                os._exit(code)  # never the worker's atexit handlers or its sockets' finalizers
        # Only the relay process holds the receiving end: once it is gone, a send fails at
        # once (ECONNREFUSED) and the sender exports its span itself.
        receiving.close()
        answering.close()

    @property
    def in_owner(self) -> bool:
        """True in the process that opened the relay, False in a forked child."""
        return os.getpid() == self._owner

    def send(self, span: ReadableSpan) -> bool:
        """Hand ``span`` to the relay process; False if it cannot take it (export it
        yourself)."""
        try:
            self._send.send(encode_span(span))
        except (OSError, TypeError, ValueError) as exc:
            log.debug("span relay unavailable (%s); exporting from this process", exc)
            return False
        return True

    @property
    def exit_code(self) -> int | None:
        """The relay process's exit code once it exited and was reaped (``-9``: killed)."""
        return self._exit_code

    def alive(self) -> bool:
        """Whether the relay process still runs (owner only; reaps it once it exited)."""
        if self._exit_code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self._exit_code = -1  # reaped by someone else
            else:
                if pid:
                    self._exit_code = os.waitstatus_to_exitcode(status)
        return self._exit_code is None

    def flush(self, timeout_s: float) -> bool:
        """Wait until every span sent so far is exported (owner only); False on timeout
        or once the relay process is gone."""
        if not self.in_owner:
            return True  # a child holds nothing of the relay's: its sends went out at once
        deadline = time.monotonic() + timeout_s
        with self._flush_lock:
            if not self.alive():
                return False
            self._flush_count += 1
            number = self._flush_count
            try:
                self._send.send(_RELAY_FLUSH + str(number).encode())
                while (remaining := deadline - time.monotonic()) > 0:
                    self._answers.settimeout(min(remaining, RELAY_PARENT_CHECK_S))
                    try:
                        answer = self._answers.recv(64)
                    except TimeoutError:
                        if not self.alive():
                            return False
                        continue
                    if answer == str(number).encode():
                        return True  # (answers to flushes that timed out are skipped)
            except OSError:
                return False
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Export what was sent so far and stop the relay process (owner only); it is
        killed if it has not exited within ``timeout`` s."""
        if not self.in_owner:
            return
        if self.alive():
            try:
                self._send.send(_RELAY_STOP)
            except OSError:
                # No room for the request (the relay is behind and its queue is full, e.g.
                # while an export is slow): SIGTERM says the same, and the relay still
                # exports what is queued before it exits.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            if self.alive():
                log.warning("span relay pid %d did not stop in %.0fs; killed", self.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                self._exit_code = -signal.SIGKILL
        self._answers.close()


class _RelayLoop:
    """The relay process: receive, batch, export; answer flushes; stop when told to, on
    SIGTERM, or once the parent is gone."""

    def __init__(
        self,
        receiving: socket.socket,
        answering: socket.socket,
        make_exporter: Callable[[], SpanExporter],
        resource: Resource,
        parent: int,
    ) -> None:
        self._recv = receiving
        self._answer = answering
        self._resource = resource
        self._parent = parent
        self._stopping = False
        self._linger_s = _env_int("OTEL_BSP_SCHEDULE_DELAY", RELAY_LINGER_MS) / 1000
        self._batch = _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", RELAY_BATCH)
        _name_this_process(RELAY_PROCESS_NAME)
        # Ctrl-C in a terminal reaches the worker's whole group: the worker's warm shutdown
        # still ends spans, so the relay stays until the worker is gone.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._exporter = make_exporter()

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _should_stop(self) -> bool:
        return self._stopping or os.getppid() != self._parent

    def _collect(self) -> list[bytes]:
        """Block for one datagram, then gather more for up to the linger time; a flush or
        stop request ends the batch. Every ``RELAY_PARENT_CHECK_S`` it looks whether it is
        time to stop: then it returns what it has (empty if nothing)."""
        frames: list[bytes] = []
        deadline = float("inf")
        while len(frames) < self._batch and not (frames and frames[-1].startswith(b"\x00")):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._recv.settimeout(min(remaining, RELAY_PARENT_CHECK_S))
            try:
                frames.append(self._recv.recv(_RELAY_MAX_DATAGRAM))
            except TimeoutError:
                if self._should_stop():
                    break
                continue
            if len(frames) == 1:
                deadline = time.monotonic() + self._linger_s
        return frames

    def run(self) -> None:
        stop = False
        try:
            while not stop:
                frames = self._collect()
                stop = not frames or self._should_stop()
                spans: list[ReadableSpan] = []
                flushed: list[bytes] = []
                for frame in frames:
                    if frame == _RELAY_STOP:
                        stop = True
                    elif frame.startswith(_RELAY_FLUSH):
                        flushed.append(frame[len(_RELAY_FLUSH) :])
                    else:
                        try:
                            spans.append(decode_span(frame, self._resource))
                        except (ValueError, KeyError, TypeError, IndexError):
                            log.warning(
                                "span relay: dropped an undecodable span (%d bytes)", len(frame)
                            )
                if spans:
                    self._export(spans)
                for number in flushed:
                    with contextlib.suppress(OSError):
                        self._answer.send(number)
            self._export_rest()
        finally:
            self._exporter.shutdown()

    def _export_rest(self) -> None:
        """Export the spans still queued in the socket (sent before the stop)."""
        self._recv.setblocking(False)
        spans: list[ReadableSpan] = []
        with contextlib.suppress(BlockingIOError, OSError):
            while len(spans) < 16 * RELAY_BATCH:
                frame = self._recv.recv(_RELAY_MAX_DATAGRAM)
                with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
                    if not frame.startswith(b"\x00"):
                        spans.append(decode_span(frame, self._resource))
        if spans:
            self._export(spans)

    def _export(self, spans: list[ReadableSpan]) -> None:
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            self._exporter.export(spans)
        except Exception:
            log.exception("span relay: export of %d spans failed", len(spans))
        finally:
            context.detach(token)


def _env_int(name: str, default: int) -> int:
    """A positive integer from the environment; ``default`` when unset or invalid."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        log.warning("span relay: %s=%r is not a positive integer; using %d", name, value, default)
        return default
    return number


def _name_this_process(name: bytes) -> None:
    """Set this process's name as ``ps -o comm`` shows it (Linux; best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(15, name, 0, 0, 0)  # PR_SET_NAME


def _context_fields(ctx: SpanContext) -> list[Any]:
    return [
        ctx.trace_id,
        ctx.span_id,
        ctx.is_remote,
        int(ctx.trace_flags),
        ctx.trace_state.to_header(),
    ]


def _context_of(fields: Sequence[Any]) -> SpanContext:
    trace_id, span_id, is_remote, flags, state = fields
    return SpanContext(
        int(trace_id),
        int(span_id),
        bool(is_remote),
        trace.TraceFlags(int(flags)),
        TraceState.from_header([state]) if state else TraceState(),
    )


def _attrs(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(values or {})


def encode_span(span: ReadableSpan) -> bytes:
    """One ended span as compact JSON (resource left out: the relay's is the same)."""
    if span.context is None:
        raise ValueError("span without a context")
    scope = span.instrumentation_scope
    data = {
        "n": span.name,
        "c": _context_fields(span.context),
        "p": _context_fields(span.parent) if span.parent is not None else None,
        "k": span.kind.value,
        "s": span.start_time,
        "e": span.end_time,
        "a": _attrs(span.attributes),
        "ev": [[ev.name, _attrs(ev.attributes), ev.timestamp] for ev in span.events],
        "l": [[_context_fields(li.context), _attrs(li.attributes)] for li in span.links],
        "st": [span.status.status_code.value, span.status.description],
        "i": [scope.name, scope.version, scope.schema_url] if scope is not None else None,
    }
    return json.dumps(data, separators=(",", ":")).encode()


def decode_span(frame: bytes, resource: Resource) -> ReadableSpan:
    data = json.loads(frame)
    scope = data["i"]
    code, description = data["st"]
    return ReadableSpan(
        name=data["n"],
        context=_context_of(data["c"]),
        parent=_context_of(data["p"]) if data["p"] is not None else None,
        resource=resource,
        attributes=data["a"],
        events=[Event(name, attrs, timestamp) for name, attrs, timestamp in data["ev"]],
        links=[Link(_context_of(ctx), attrs) for ctx, attrs in data["l"]],
        kind=SpanKind(data["k"]),
        status=Status(StatusCode(code), description),
        start_time=data["s"],
        end_time=data["e"],
        instrumentation_scope=InstrumentationScope(*scope) if scope is not None else None,
    )
