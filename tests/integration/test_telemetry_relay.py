"""The horse span relay: forked children and their parent hand ended spans to a relay
process, which exports them over OTLP (here to a harness collector)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from harness.collector import TraceCollector
from harness.spans import SpanRecord
from harness.wait import wait_until
from notepipe.span_relay import SpanRelay, decode_span, encode_span
from notepipe.telemetry import ForkAwareSpanProcessor, ForkFriendlyTracerProvider

RESOURCE = Resource.create({"service.name": "relay-test"})


class Rig:
    """A tracer whose spans are relayed (exported by a relay process to ``collector``),
    from this process and from forked children; ``direct`` gets what a process exports
    itself (a child whose span the relay could not take)."""

    def __init__(self, collector: TraceCollector) -> None:
        self.collector = collector
        self.direct = InMemorySpanExporter()
        self.processor = ForkAwareSpanProcessor(lambda: BatchSpanProcessor(self.direct))
        self.relay = SpanRelay(lambda: OTLPSpanExporter(endpoint=collector.traces_url), RESOURCE)
        self.processor.relay = self.relay
        self.provider = TracerProvider(resource=RESOURCE)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("relay-test")

    def drain(self) -> list[SpanRecord]:
        """Stop the relay once it exported everything sent before; return what it exported."""
        self.relay.close()
        assert not self.relay.alive()
        return self.collector.spans()


@pytest.fixture
def rig() -> Iterator[Rig]:
    with TraceCollector() as collector:
        rig = Rig(collector)
        try:
            yield rig
        finally:
            rig.provider.shutdown()


def _fork(child: object) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            child()  # type: ignore[operator]
        except BaseException:
            code = 1
        os._exit(code)  # like an RQ work-horse: no atexit, no flush
    return pid


def _horse_report(horse: Callable[[], str]) -> str:
    """Run ``horse`` in a forked child (exiting like an RQ work-horse) and return what it
    reported; the child must exit 0."""
    report_r, report_w = os.pipe()

    def child() -> None:
        os.close(report_r)
        os.write(report_w, horse().encode())

    pid = _fork(child)
    os.close(report_w)
    try:
        report = os.read(report_r, 1024).decode()
    finally:
        os.close(report_r)
    assert _exit_code(pid) == 0
    return report


def _exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_span_survives_encoding() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("relay-test")
    link_ctx = trace.SpanContext(0xABC, 0xDEF, is_remote=True)
    with tracer.start_as_current_span(
        "note.attempt",
        kind=SpanKind.CONSUMER,
        attributes={"note.id": 7, "rq.job.id": "note-7-a0", "tags": ("a", "b"), "ok": True},
        links=[Link(link_ctx, {"why": "retry"})],
        record_exception=False,
    ) as parent:
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
        parent.record_exception(RuntimeError("boom"))
        parent.set_status(StatusCode.ERROR, "attempt 1 failed")
        parent.set_attribute("note.outcome", "retry")
    originals = {s.name: s for s in memory.get_finished_spans()}
    for name, original in originals.items():
        copy = decode_span(encode_span(original), RESOURCE)
        assert copy.name == name
        assert copy.context == original.context
        assert copy.parent == original.parent
        assert copy.kind == original.kind
        assert (copy.start_time, copy.end_time) == (original.start_time, original.end_time)
        assert dict(copy.attributes or {}) == {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in (original.attributes or {}).items()
        }
        assert [(e.name, e.timestamp) for e in copy.events] == [
            (e.name, e.timestamp) for e in original.events
        ]
        assert copy.status.status_code == original.status.status_code
        assert copy.status.description == original.status.description
        assert copy.instrumentation_scope == original.instrumentation_scope
        assert copy.resource is RESOURCE
    attempt = decode_span(encode_span(originals["note.attempt"]), RESOURCE)
    assert attempt.links[0].context.span_id == 0xDEF
    assert dict(attempt.links[0].attributes or {}) == {"why": "retry"}
    exception = attempt.events[0]
    assert (exception.attributes or {})["exception.type"] == "RuntimeError"


def test_horse_spans_are_exported_by_the_parent(rig: Rig) -> None:
    def horse() -> None:
        with (
            rig.tracer.start_as_current_span("note.attempt", attributes={"note.id": 1}),
            rig.tracer.start_as_current_span("UPDATE"),
        ):
            pass

    assert _exit_code(_fork(horse)) == 0
    spans = rig.drain()
    assert sorted(s.name for s in spans) == ["UPDATE", "note.attempt"]
    attempt = next(s for s in spans if s.name == "note.attempt")
    update = next(s for s in spans if s.name == "UPDATE")
    assert update.parent_span_id == attempt.span_id
    assert attempt.service == "relay-test"  # the relay's resource: the worker's
    assert attempt.attributes == {"note.id": 1}
    rig.provider.force_flush()
    assert rig.direct.get_finished_spans() == ()  # the horse exported nothing itself


def test_the_owners_spans_take_the_relay_too_and_a_flush_waits_for_their_export(
    rig: Rig,
) -> None:
    with rig.tracer.start_as_current_span("reconcile.pass"):
        pass
    assert rig.provider.force_flush(5_000)  # returns once the relay process exported it
    assert [s.name for s in rig.collector.spans()] == ["reconcile.pass"]
    assert rig.direct.get_finished_spans() == ()
    assert rig.processor._batch is None  # no batch processor (no thread) was ever made


def test_a_forked_horse_starts_no_export_thread(rig: Rig) -> None:
    """The SDK's batch processor would start one in every child (os.register_at_fork)."""

    def horse() -> str:
        with rig.tracer.start_as_current_span("note.attempt"):
            pass
        rig.provider.force_flush()  # what process_note_job's finally does: nothing to wait for
        return str(threading.active_count())

    assert _horse_report(horse) == "1"
    assert [s.name for s in rig.drain()] == ["note.attempt"]


def test_without_a_relay_spans_are_batch_exported_by_the_process_itself() -> None:
    direct = InMemorySpanExporter()
    processor = ForkAwareSpanProcessor(lambda: BatchSpanProcessor(direct))
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(processor)
    try:
        with provider.get_tracer("t").start_as_current_span("POST /notes"):
            pass
        assert provider.force_flush(5_000)
        assert [s.name for s in direct.get_finished_spans()] == ["POST /notes"]
    finally:
        provider.shutdown()


def test_a_flush_after_the_relay_closed_says_it_could_not(rig: Rig) -> None:
    assert rig.processor.relay is not None
    rig.processor.relay.close()
    assert rig.processor.relay.flush(1.0) is False


def test_killed_horse_loses_only_its_open_spans(rig: Rig) -> None:
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()

    def horse() -> None:
        os.close(ready_r)
        os.close(hold_w)
        with rig.tracer.start_as_current_span("note.attempt"):
            with rig.tracer.start_as_current_span("claim"):
                pass
            os.write(ready_w, b"x")  # "claim" has ended (and was sent)
            os.read(hold_r, 1)  # blocks until killed

    pid = _fork(horse)
    os.close(ready_w)
    os.close(hold_r)
    try:
        assert os.read(ready_r, 1) == b"x"
        os.kill(pid, signal.SIGKILL)
        assert _exit_code(pid) == -signal.SIGKILL
    finally:
        os.close(ready_r)
        os.close(hold_w)
    assert [s.name for s in rig.drain()] == ["claim"]


def test_horse_exports_itself_when_the_relay_cannot_take_a_span(rig: Rig) -> None:
    """A span larger than a datagram may be: the horse falls back to its own export."""

    def horse() -> str:
        with rig.tracer.start_as_current_span("small"):
            pass
        with rig.tracer.start_as_current_span("huge", attributes={"blob": "x" * (4 << 20)}):
            pass
        rig.provider.force_flush()  # what process_note_job's finally does
        return ",".join(s.name for s in rig.direct.get_finished_spans())

    assert _horse_report(horse) == "huge"  # exported by the horse itself
    assert [s.name for s in rig.drain()] == ["small"]


@pytest.mark.parametrize(
    ("provider_class", "kept"), [(ForkFriendlyTracerProvider, True), (TracerProvider, False)]
)
def test_a_forked_child_keeps_the_workers_resource_instead_of_detecting_its_own(
    provider_class: type[TracerProvider], kept: bool
) -> None:
    """The SDK's provider re-runs its resource detectors in every child (a thread pool and
    a new service.instance.id per RQ work-horse); the worker's provider does not."""
    provider = provider_class(resource=RESOURCE)
    try:
        seen = _horse_report(lambda: "kept" if provider.resource is RESOURCE else "detected")
        assert seen == ("kept" if kept else "detected")
        assert provider.resource is RESOURCE  # the parent's own is untouched either way
    finally:
        provider.shutdown()


def test_the_relay_is_a_named_process_that_exports_and_exits_on_sigterm(rig: Rig) -> None:
    comm = Path(f"/proc/{rig.relay.pid}/comm")
    wait_until(
        lambda: comm.read_text().strip() == "notepipe-relay", 10, describe="the relay's name"
    )
    with rig.tracer.start_as_current_span("note.attempt"):
        pass
    os.kill(rig.relay.pid, signal.SIGTERM)
    wait_until(lambda: not rig.relay.alive(), 10, describe="the relay to exit on SIGTERM")
    assert [s.name for s in rig.collector.spans()] == ["note.attempt"]
    assert rig.relay.flush(1.0) is False
    with rig.tracer.start_as_current_span("note.late"):
        pass  # the relay is gone: this process exports the span itself
    assert rig.provider.force_flush(5_000) is False  # the relay cannot say it exported all
    assert [s.name for s in rig.direct.get_finished_spans()] == ["note.late"]


KILLED_WORKER = """
import sys, time
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from notepipe.span_relay import SpanRelay
from notepipe.telemetry import ForkAwareSpanProcessor

resource = Resource.create({"service.name": "killed-worker"})
processor = ForkAwareSpanProcessor(lambda: SimpleSpanProcessor(InMemorySpanExporter()))
processor.relay = SpanRelay(lambda: OTLPSpanExporter(endpoint=sys.argv[1]), resource)
provider = TracerProvider(resource=resource)
provider.add_span_processor(processor)
with provider.get_tracer("t").start_as_current_span("note.attempt"):
    pass
print(processor.relay.pid, flush=True)  # the span is sent; the relay lingers for more
time.sleep(600)
"""


def test_a_killed_workers_relay_exports_what_it_was_sent_and_exits() -> None:
    """The spans of a worker SIGKILLed right after they were sent (still in the relay's
    batch) reach the collector; the orphaned relay process does not outlive it long."""
    with TraceCollector() as collector:
        worker = subprocess.Popen(
            [sys.executable, "-c", KILLED_WORKER, collector.traces_url],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stdout is not None
            relay = psutil.Process(int(worker.stdout.readline()))
            worker.kill()
            worker.wait(10)
            spans = collector.wait_for(lambda s: True, 10, describe="the killed worker's span")
            assert [(s.name, s.service) for s in spans] == [("note.attempt", "killed-worker")]
            wait_until(
                lambda: not relay.is_running() or relay.status() == psutil.STATUS_ZOMBIE,
                10,
                describe="the orphaned relay to exit",
            )
        finally:
            worker.kill()
            worker.wait(10)


def test_the_relay_batches_as_the_standard_batch_variables_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A minute's delay, batches of two: the second span sends the batch at once."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    with TraceCollector() as collector:
        rig = Rig(collector)
        try:
            for name in ("note.first", "note.second", "note.third"):
                with rig.tracer.start_as_current_span(name):
                    pass
            spans = collector.wait_for(lambda s: True, 10, count=2, describe="a full batch")
            assert sorted(s.name for s in spans) == ["note.first", "note.second"]
            assert rig.provider.force_flush(10_000)  # the third waits for its batch: flushed
            assert len(collector.spans()) == 3
        finally:
            rig.provider.shutdown()


def test_closing_kills_a_relay_that_does_not_stop_in_time(rig: Rig) -> None:
    os.kill(rig.relay.pid, signal.SIGSTOP)  # frozen: it cannot read the stop request
    try:
        rig.relay.close(timeout=0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(rig.relay.pid, signal.SIGCONT)
    assert not rig.relay.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(rig.relay.pid, 0)  # killed and reaped


def _pending_signals(pid: int) -> int:
    """The signals pending for process ``pid`` (its own and its thread group's)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)


def test_a_relay_too_far_behind_to_take_the_stop_request_is_stopped_by_sigterm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A relay whose queue is full (here: frozen; in life, a slow export) cannot take the
    stop request. Closing then sends SIGTERM: the relay exports what was queued and exits
    by itself, instead of being killed at the close timeout with those spans."""
    monkeypatch.setattr("notepipe.span_relay.RELAY_SEND_TIMEOUT_S", 0.05)
    with TraceCollector() as collector:
        rig = Rig(collector)
        try:
            with rig.tracer.start_as_current_span("note.first"):
                pass
            assert rig.provider.force_flush(10_000)  # the relay runs (its handlers are set)
            os.kill(rig.relay.pid, signal.SIGSTOP)
            relayed = 0
            while rig.processor._batch is None:  # the first span the relay could not take
                with rig.tracer.start_as_current_span(f"note.{relayed}"):
                    pass
                relayed += 1
                assert relayed < 10_000, "the relay's queue never filled"
            relayed -= 1
            closing = threading.Thread(target=rig.relay.close, kwargs={"timeout": 30})
            closing.start()
            wait_until(
                lambda: _pending_signals(rig.relay.pid) & (1 << (signal.SIGTERM - 1)),
                10,
                describe="a SIGTERM for the relay that could not take the stop request",
            )
            os.kill(rig.relay.pid, signal.SIGCONT)
            closing.join(30)
            assert not closing.is_alive()
            assert rig.relay.exit_code == 0  # it stopped by itself, not killed at the timeout
            assert len(collector.spans()) == 1 + relayed
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rig.relay.pid, signal.SIGCONT)
            rig.provider.shutdown()
