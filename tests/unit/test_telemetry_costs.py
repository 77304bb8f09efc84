"""Cheaper tracing: span attributes are capped, Redis commands and PostgreSQL statements
get no spans unless asked for, and a worker's warm-up of the horses' span path exports
nothing (each case runs in a fresh interpreter: the tracer provider is global)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from notepipe import logs, telemetry

logs.setup_logging("INFO")
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

on = sys.argv[1] == "on"
assert telemetry.configure_telemetry("t", redis_spans=on, db_spans=on)
memory = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))
with trace.get_tracer("t").start_as_current_span("note.attempt") as span:
    span.set_attribute("db.statement", "x" * 5000)
    span.set_attribute("note.outcome", "completed")
    span.add_event("exception", {"exception.stacktrace": "y" * 5000})
(done,) = memory.get_finished_spans()
print(json.dumps({
    "statement": len(done.attributes["db.statement"]),
    "outcome": done.attributes["note.outcome"],
    "event": len(done.events[0].attributes["exception.stacktrace"]),
    "redis": RedisInstrumentor().is_instrumented_by_opentelemetry,
    "db": PsycopgInstrumentor().is_instrumented_by_opentelemetry,
}))
"""


def _run(redis: str, **env: str) -> tuple[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NOTEPIPE_"))}
    environ.update(
        OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", **env
    )
    proc = subprocess.run(
        [sys.executable, "-c", CODE, redis],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1], proc.stderr


def test_attributes_capped_and_no_client_spans_by_default() -> None:
    out, log = _run("off")
    assert out == (
        '{"statement": 256, "outcome": "completed", "event": 5000, "redis": false, "db": false}'
    )
    # the cut is this project's setting: no warning line per statement span
    assert "exceeds max length" not in log
    assert "exporting spans over OTLP" in log  # the log was captured at all


def test_standard_variable_and_client_spans_opt_in() -> None:
    out, _ = _run("on", OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT="1000")
    assert out == (
        '{"statement": 1000, "outcome": "completed", "event": 5000, "redis": true, "db": true}'
    )


WORKER = """
import os
from opentelemetry import trace
from notepipe import telemetry

assert telemetry.configure_telemetry("notepipe-worker")
assert telemetry.start_horse_relay()  # a worker, before it forks: warms the span path up
assert trace.get_current_span() is trace.INVALID_SPAN  # the warm-up's context is gone
pid = os.fork()
if pid == 0:  # a work-horse: its attempt span goes through the relay
    with trace.get_tracer("notepipe.job").start_as_current_span("note.attempt"):
        pass
    telemetry.flush_telemetry()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
telemetry.shutdown_telemetry()  # exports what the relay holds
"""


def test_a_workers_span_warm_up_exports_nothing() -> None:
    from harness.collector import TraceCollector

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NOTEPIPE_"))}
    with TraceCollector() as collector:
        environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
        subprocess.run([sys.executable, "-c", WORKER], env=environ, timeout=60, check=True)
        spans = collector.wait_for(lambda s: True, 10, describe="the horse's span")
        assert [(s.name, s.service) for s in collector.spans()] == [
            ("note.attempt", "notepipe-worker")
        ], spans
