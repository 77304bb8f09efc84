"""OpenTelemetry setup from the standard ``OTEL_*`` variables, and trace-context helpers.

Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or ``OTEL_TRACES_EXPORTER=otlp``;
``OTEL_SDK_DISABLED=true`` turns tracing off. Root spans that are not ours (an
idle worker's Redis polling, say) are dropped, so one note is one trace.

Forked work-horses do not export: once a worker opened the relay
(:func:`start_horse_relay`), every span a horse ends is sent at once, as one
datagram on a UNIX socket pair made before the fork, to the worker parent,
which exports it on its own long-lived OTLP connection (the worker's own spans
take the same way). A horse then has nothing to flush before ``os._exit``, and
a killed horse loses only the spans it had not ended. Should the parent be gone
or the datagram too large, the horse falls back to exporting itself (flushed by
:func:`flush_telemetry`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState
from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)

#: Root spans whose names start with one of these are kept; other roots are dropped.
ROOT_SPAN_PREFIXES = ("note.", "reconcile", "GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "fault.")

_provider: TracerProvider | None = None
_processor: ForkAwareSpanProcessor | None = None

#: A horse waits at most this long for room in the relay socket before exporting itself.
RELAY_SEND_TIMEOUT_S = 2.0
#: The parent exports at most this many relayed spans per request...
RELAY_BATCH = 512
#: ... gathered for at most this long after the first (a worker SIGKILL loses them). Each
#: export request costs the forking worker ~1 ms and re-copies the pages the export touches
#: (every fork shares them again): 0.5 s batches cost a third of 0.2 s ones per note.
RELAY_LINGER_S = 0.5
_RELAY_MAX_DATAGRAM = 1 << 20
_RELAY_STOP = b"\x00stop"
#: A flush request: ``_RELAY_FLUSH`` + its number; answered once what came before is exported.
_RELAY_FLUSH = b"\x00flush"


class OwnRootsSampler(Sampler):
    """Sample root spans only when they are one of ours (see ``ROOT_SPAN_PREFIXES``)."""

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        keep = name.startswith(ROOT_SPAN_PREFIXES)
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "OwnRootsSampler"


class ForkFriendlyTracerProvider(TracerProvider):
    """A :class:`TracerProvider` that keeps its resource in a forked child.

    After every fork the SDK re-runs its process-dependent resource detectors (a thread
    pool, a fresh ``service.instance.id``): ~4 ms of CPU and ~490 copy-on-write page
    faults in each RQ work-horse, a quarter of what tracing cost a note. A work-horse is
    part of its worker: its spans are exported under the worker's resource (by the
    worker, through the :class:`SpanRelay`, or by itself when the relay cannot take
    them), so the child keeps the parent's resource and only renews the lock the SDK
    renews.
    """

    def _handle_fork(self) -> None:
        self._tracers_lock = threading.Lock()


def _exporter_wanted() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter == "otlp"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


#: Span attribute values are cut to this many characters unless
#: ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` (or ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``) says
#: otherwise: a ledger statement's full SQL (``db.statement``, ~1.4 KB) was most of every
#: exported byte. The attributes the checker reads are short; events keep their length.
SPAN_ATTRIBUTE_LENGTH = 256


class _TruncationNoticeFilter(logging.Filter):
    """Drops the SDK's "String attribute value exceeds max length" warning: cutting values
    is this module's setting, not news, and the SDK logged it once per ledger statement
    span (a log line and ~0.1 ms of CPU per statement, in every process). Its other
    attribute warnings (invalid keys or types) pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("String attribute value exceeds max length")


def _span_limits() -> SpanLimits:
    if os.environ.get("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") or os.environ.get(
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
    ):
        return SpanLimits()  # the standard variables decide
    return SpanLimits(max_span_attribute_length=SPAN_ATTRIBUTE_LENGTH)


def configure_telemetry(
    service_name: str,
    *,
    redis_spans: bool = False,
    db_spans: bool = False,
) -> bool:
    """Install the global tracer provider once per process; return True if exporting.

    ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` override ``service_name``.
    The pipeline's own spans (``POST /notes``, ``note.enqueue``, ``note.attempt``,
    ``note.recover``, ``reconcile.pass``) are always made. Client libraries get spans
    only when asked: PostgreSQL statements with ``db_spans`` (``NOTEPIPE_TRACE_DB``; two
    to four per note, and in a forked work-horse each costs as much as the attempt span
    itself), Redis commands with ``redis_spans`` (``NOTEPIPE_TRACE_REDIS``; RQ issues a
    dozen per job). ``note.enqueue`` and ``note.attempt`` carry what the checker and the
    report read either way.
    """
    global _provider, _processor  # one provider per process, by OpenTelemetry's design
    if _provider is not None:
        return True
    if not _exporter_wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(OwnRootsSampler())
    logging.getLogger("opentelemetry.attributes").addFilter(_TruncationNoticeFilter())
    provider = ForkFriendlyTracerProvider(
        resource=resource, sampler=sampler, span_limits=_span_limits()
    )
    processor = ForkAwareSpanProcessor(lambda: BatchSpanProcessor(OTLPSpanExporter()))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider, _processor = provider, processor
    _instrument_clients(redis_spans=redis_spans, db_spans=db_spans)
    log.info("OpenTelemetry exporting spans over OTLP as %s", service_name)
    return True


def _instrument_clients(*, redis_spans: bool, db_spans: bool) -> None:
    if redis_spans:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
    if db_spans:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """Instrumented clients make no spans inside this block (housekeeping queries)."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def start_horse_relay() -> bool:
    """In a worker parent, before it forks horses: relay their spans through this process.

    Returns False (and changes nothing) when telemetry is off."""
    if _provider is None or _processor is None:
        return False
    if _processor.relay is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _processor.relay = SpanRelay(OTLPSpanExporter(), _provider.resource)
        warm_up_span_path(_provider.resource)
    return True


#: How often :func:`warm_up_span_path` runs a horse's span path in the worker.
WARM_UP_RUNS = 16


def warm_up_span_path(resource: Resource) -> None:
    """Run a work-horse's span path (extract the job's trace context, start a span with
    attributes, end it, encode it for the relay) ``WARM_UP_RUNS`` times in the worker
    before it forks, on a provider of its own that exports nothing.

    Python 3.11 specialises a function's bytecode over its first calls, writing into its
    code object. Done once in the worker, every horse shares the result; left to the
    horses, each wrote those pages itself: ~150 copy-on-write page faults and ~0.5 ms of
    CPU per attempt span (``benchmarks/horse_cost.py``)."""
    provider = ForkFriendlyTracerProvider(
        resource=resource, span_limits=_span_limits(), shutdown_on_exit=False
    )
    tracer = provider.get_tracer("notepipe.warm-up")
    carrier = {"traceparent": f"00-{'1' * 32}-{'1' * 16}-01"}
    for attempt in range(WARM_UP_RUNS):
        with tracer.start_as_current_span(
            "note.warm-up",
            context=context_from(carrier),
            kind=SpanKind.CONSUMER,
            attributes={"note.id": attempt, "rq.job.id": "warm-up"},
            record_exception=False,
        ) as span:
            span.set_attribute("note.attempt", attempt)
            span.set_attribute("note.outcome", "completed")
        if isinstance(span, ReadableSpan):
            encode_span(span)
    provider.shutdown()


def flush_telemetry(timeout_ms: int = 5_000) -> None:
    """Export buffered spans now (a work-horse calls this before it exits; with the relay
    open its spans are already with the parent, and this exports nothing)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def shutdown_telemetry() -> None:
    global _provider, _processor
    if _provider is not None:
        _provider.shutdown()
        _provider, _processor = None, None


class ForkAwareSpanProcessor(SpanProcessor):
    """Batch export in a process without a relay; in a worker with a :class:`SpanRelay`
    open, every ended span goes through the relay: a forked child's, and the worker's own.

    The batch processor is made on first use only, so a worker that opened its relay
    before ending any span has none: the SDK's batch processor starts a new export thread
    in every forked child (``os.register_at_fork``), which cost a work-horse ~3.5 ms of CPU
    and ~500 copy-on-write page faults, for a thread it never needs. A child whose span
    the relay cannot take (its parent is gone, the span is too large) makes one then and
    exports that span itself (flushed by :func:`flush_telemetry`).
    """

    def __init__(self, make_batch: Callable[[], SpanProcessor]) -> None:
        self._make_batch = make_batch
        self._batch: SpanProcessor | None = None
        self._batch_lock = threading.Lock()
        self.relay: SpanRelay | None = None

    @property
    def batch(self) -> SpanProcessor:
        """The batch processor of this process (made now if it has none yet)."""
        if self._batch is None:
            with self._batch_lock:
                if self._batch is None:
                    self._batch = self._make_batch()
        return self._batch

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        if self._batch is not None:
            self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        relay = self.relay
        if relay is not None and relay.send(span):
            return
        self.batch.on_end(span)

    def shutdown(self) -> None:
        if self.relay is not None and self.relay.in_owner:
            self.relay.close()
        if self._batch is not None:
            self._batch.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flushed = True
        if self.relay is not None and self.relay.in_owner:
            flushed = self.relay.flush(timeout_millis / 1000)
        if self._batch is not None:
            flushed = self._batch.force_flush(timeout_millis) and flushed
        return flushed


class SpanRelay:
    """A UNIX datagram socket pair: ended spans are :meth:`send`-t as one datagram each (by
    forked children and by this process alike); a daemon thread of this process exports
    them, batched, with ``exporter``."""

    def __init__(self, exporter: SpanExporter, resource: Resource) -> None:
        self.exporter = exporter
        self.resource = resource
        self.exported = 0
        self._recv, self._send = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.settimeout(RELAY_SEND_TIMEOUT_S)
        self._pid = os.getpid()
        self._flushes: dict[int, threading.Event] = {}
        self._flush_lock = threading.Lock()
        self._flush_count = 0
        # A child closes its copy of the receiving end: once the parent is gone, a send
        # fails at once (ECONNREFUSED) and the child exports its spans itself.
        reinit = weakref.WeakMethod(self._after_fork_in_child)
        os.register_at_fork(after_in_child=lambda: (m := reinit()) and m())
        self._thread = threading.Thread(target=self._run, name="otel-horse-relay", daemon=True)
        self._thread.start()

    @property
    def in_owner(self) -> bool:
        """True in the process that opened the relay (and exports), False in a child."""
        return os.getpid() == self._pid

    def _after_fork_in_child(self) -> None:
        if not self.in_owner:
            self._recv.close()

    def send(self, span: ReadableSpan) -> bool:
        """Hand ``span`` to the exporting thread; False if it cannot take it (export it
        yourself)."""
        try:
            self._send.send(encode_span(span))
        except (OSError, TypeError, ValueError) as exc:
            log.debug("span relay unavailable (%s); exporting from this process", exc)
            return False
        return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every span sent so far is exported (owner only); False on timeout."""
        if not self.in_owner:
            return True  # a child holds nothing of the relay's: its sends went out at once
        if not self._thread.is_alive():
            return False  # closed: what is sent now is never exported
        done = threading.Event()
        with self._flush_lock:
            self._flush_count += 1
            number = self._flush_count
            self._flushes[number] = done
        try:
            self._send.send(_RELAY_FLUSH + str(number).encode())
            return done.wait(timeout_s)
        except OSError:
            return False
        finally:
            with self._flush_lock:
                self._flushes.pop(number, None)

    def close(self, timeout: float = 10.0) -> None:
        """Export what was sent so far, then stop the thread (owner only)."""
        if self._thread.is_alive():
            try:
                self._send.send(_RELAY_STOP)
            except OSError:
                pass
            else:
                self._thread.join(timeout)
        self.exporter.shutdown()

    def _collect(self) -> list[bytes]:
        """Block for one datagram, then gather more for up to ``RELAY_LINGER_S`` (one
        export request per batch, not per span); a flush or stop request ends the batch."""
        self._recv.settimeout(None)
        frames = [self._recv.recv(_RELAY_MAX_DATAGRAM)]
        deadline = time.monotonic() + RELAY_LINGER_S
        while len(frames) < RELAY_BATCH and not frames[-1].startswith(b"\x00"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._recv.settimeout(remaining)
            try:
                frames.append(self._recv.recv(_RELAY_MAX_DATAGRAM))
            except TimeoutError:
                break
        return frames

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                frames = self._collect()
            except OSError:
                return
            spans = []
            flushed: list[int] = []
            for frame in frames:
                if frame == _RELAY_STOP:
                    stop = True
                elif frame.startswith(_RELAY_FLUSH):
                    flushed.append(int(frame[len(_RELAY_FLUSH) :]))
                else:
                    try:
                        spans.append(decode_span(frame, self.resource))
                    except (ValueError, KeyError, TypeError, IndexError):
                        log.warning(
                            "span relay: dropped an undecodable span (%d bytes)", len(frame)
                        )
            if spans:
                self._export(spans)
            with self._flush_lock:
                for number in flushed:
                    if (done := self._flushes.get(number)) is not None:
                        done.set()

    def _export(self, spans: list[ReadableSpan]) -> None:
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            self.exporter.export(spans)
            self.exported += len(spans)
        except Exception:
            log.exception("span relay: export of %d spans failed", len(spans))
        finally:
            context.detach(token)


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
    """One ended span as compact JSON (resource left out: the parent's is the same)."""
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


def current_trace_context() -> dict[str, str]:
    """The W3C ``traceparent``/``tracestate`` of the current span, for ``job.meta``."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, Any]) -> context.Context:
    """A context to parent spans on, from a carrier holding ``traceparent``."""
    return propagate.extract(
        {k: str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    )
