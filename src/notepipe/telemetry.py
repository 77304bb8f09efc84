"""OpenTelemetry setup from the standard ``OTEL_*`` variables, and trace-context helpers.

Spans are exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or ``OTEL_TRACES_EXPORTER=otlp``;
``OTEL_SDK_DISABLED=true`` turns tracing off. Root spans that are not ours (an
idle worker's Redis polling, say) are dropped, so one note is one trace.

Forked work-horses do not export: once a worker opened the relay
(:func:`start_horse_relay`), every span a horse ends is sent at once, as one
datagram on a UNIX socket pair made before the fork, to the worker's relay
process, which exports it on its own long-lived OTLP connection (the worker's
own spans take the same way; see :mod:`notepipe.span_relay`). A horse then has
nothing to flush before ``os._exit``, and a killed horse loses only the spans it
had not ended. Should the relay be gone or the datagram too large, the horse
falls back to exporting itself (flushed by :func:`flush_telemetry`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
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
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from notepipe.span_relay import SpanRelay, encode_span

log = logging.getLogger(__name__)

#: Root spans whose names start with one of these are kept; other roots are dropped.
ROOT_SPAN_PREFIXES = ("note.", "reconcile", "GET ", "POST ", "PUT ", "DELETE ", "PATCH ", "fault.")

_provider: TracerProvider | None = None
_processor: ForkAwareSpanProcessor | None = None


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
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentBased(OwnRootsSampler())
    logging.getLogger("opentelemetry.attributes").addFilter(_TruncationNoticeFilter())
    provider = ForkFriendlyTracerProvider(
        resource=resource, sampler=sampler, span_limits=_span_limits()
    )
    processor = ForkAwareSpanProcessor(lambda: BatchSpanProcessor(otlp_span_exporter()))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider, _processor = provider, processor
    _instrument_clients(redis_spans=redis_spans, db_spans=db_spans)
    log.info("OpenTelemetry exporting spans over OTLP as %s", service_name)
    return True


#: Set, they name a credential provider whose requests session the OTLP exporter uses.
_CREDENTIAL_PROVIDER_VARIABLES = (
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
    "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER",
)


def otlp_traces_url() -> str:
    """Where spans are exported, as the OTLP exporter resolves it from the environment."""
    url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if url:
        return url
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
    return base.rstrip("/") + "/v1/traces"


def otlp_span_exporter() -> SpanExporter:
    """The OTLP/HTTP span exporter the standard variables configure, on a requests session
    that read the proxy and netrc environment once, for the traces URL.

    A default session re-reads them on every request: requests walks ``os.environ`` twice
    per export (``getproxies_environment``, ``should_bypass_proxies``). Measured here, an
    export request to a loopback collector cost 1.1-1.7 ms of CPU, and 8-22 % less on
    this session (one to five spans; 35 variables in the environment). The settings
    are the same (``HTTPS_PROXY``, ``NO_PROXY``, ``~/.netrc``), only read at start-up;
    ``REQUESTS_CA_BUNDLE`` is not consulted (``OTEL_EXPORTER_OTLP_CERTIFICATE`` is). A
    configured credential provider's session is left as the exporter makes it."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if any(os.environ.get(name) for name in _CREDENTIAL_PROVIDER_VARIABLES):
        return OTLPSpanExporter()
    import requests
    from requests.utils import get_environ_proxies, get_netrc_auth

    url = otlp_traces_url()
    session = requests.Session()
    session.proxies.update(get_environ_proxies(url))
    session.auth = get_netrc_auth(url)
    session.trust_env = False
    return OTLPSpanExporter(session=session)


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
    """In a worker parent, before it forks horses: start the relay process that exports
    their spans and the worker's own (:class:`notepipe.span_relay.SpanRelay`).

    Returns False (and changes nothing) when telemetry is off. Should the relay process
    not start (no fork possible), every process exports its own spans, as without it."""
    if _provider is None or _processor is None:
        return False
    if _processor.relay is None:
        try:
            _processor.relay = SpanRelay(otlp_span_exporter, _provider.resource)
        except OSError as exc:
            log.warning("no span relay (%s): work-horses will export their own spans", exc)
            return True
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
