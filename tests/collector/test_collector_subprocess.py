"""A separate process, configured only by OTEL_* env vars, exports to the collector.

That is how the pipeline's API and workers use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from harness.collector import TraceCollector

CHILD = textwrap.dedent(
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()  # resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from env
    tracer = provider.get_tracer("pipeline")
    with tracer.start_as_current_span("note.enqueue") as span:
        span.set_attribute("note.id", 1234)
        with tracer.start_as_current_span("note.attempt") as attempt:
            attempt.set_attribute("note.attempt", 1)
    provider.shutdown()
    """
)


def test_spans_from_a_subprocess_configured_by_env(collector: TraceCollector) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_SERVICE_NAME": "notepipe-worker",
        "OTEL_RESOURCE_ATTRIBUTES": "worker.name=w1",
    }

    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    spans = collector.wait_for(lambda s: s.service == "notepipe-worker", 10, count=2)
    assert collector.for_note(1234) == spans
    enqueue, attempt = spans
    assert (enqueue.name, attempt.name) == ("note.enqueue", "note.attempt")
    assert attempt.parent_span_id == enqueue.span_id
    assert attempt.resource["worker.name"] == "w1"
    assert "Traceback" not in result.stderr
