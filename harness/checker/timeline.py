"""Per-note timelines derived from a history: attempts, spans, trace ids, jobs.

Pure derivation, no judgement: classification and invariants read these.
An *attempt* starts with a claim event (``* -> processing``) and ends with the
first later event leaving ``processing`` (``-> completed | queued | failed``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.checker.history import PROCESSING, TERMINAL, History, LedgerEvent, LedgerNote
from harness.spans import ATTEMPT_SPAN, ATTR_ATTEMPT, ATTR_JOB_ID, ATTR_OUTCOME, SpanRecord
from notepipe.models import EndCause


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def span_attempt(span: SpanRecord) -> int | None:
    value = span.attributes.get(ATTR_ATTEMPT)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def span_outcome(span: SpanRecord) -> str | None:
    value = span.attributes.get(ATTR_OUTCOME)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt of a note, as the ledger recorded it."""

    number: int
    claim: LedgerEvent
    end: LedgerEvent | None
    recovered: bool  # ended by the reconciler (cause lease_expired), not by the attempt itself
    spans: tuple[SpanRecord, ...] = ()

    @property
    def outcome(self) -> str | None:
        return self.end.to_status if self.end is not None else None

    @property
    def cause(self) -> str | None:
        """The structured cause its ending event recorded (``None``: none, or still open)."""
        return self.end.cause if self.end is not None else None

    @property
    def ledger_duration_s(self) -> float | None:
        if self.end is None:
            return None
        return (self.end.at - self.claim.at).total_seconds()


@dataclass(frozen=True)
class NoteTimeline:
    """Everything known about one note id, from every witness."""

    note_id: int
    note: LedgerNote | None
    events: tuple[LedgerEvent, ...]
    attempts: tuple[Attempt, ...]
    spans: tuple[SpanRecord, ...]
    accepted_at: datetime | None
    trace_ids: tuple[str, ...]
    job_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def terminal_event(self) -> LedgerEvent | None:
        """The first event entering a terminal status."""
        return next((e for e in self.events if e.to_status in TERMINAL), None)

    @property
    def completions(self) -> tuple[LedgerEvent, ...]:
        return tuple(e for e in self.events if e.to_status == "completed")

    @property
    def start_at(self) -> datetime | None:
        """Acceptance by the client, else the ledger's creation time."""
        if self.accepted_at is not None:
            return self.accepted_at
        return self.note.created_at if self.note is not None else None


def build_attempts(
    events: tuple[LedgerEvent, ...],
    spans_by_attempt: Mapping[int, tuple[SpanRecord, ...]],
) -> tuple[Attempt, ...]:
    attempts: list[Attempt] = []
    open_claim: LedgerEvent | None = None

    def close(end: LedgerEvent | None) -> None:
        assert open_claim is not None
        recovered = end is not None and end.cause == EndCause.LEASE_EXPIRED
        number = open_claim.attempt
        attempts.append(
            Attempt(number, open_claim, end, recovered, spans_by_attempt.get(number, ()))
        )

    for event in events:
        if event.from_status == PROCESSING and open_claim is not None:
            close(event)
            open_claim = None
        if event.to_status == PROCESSING:
            if open_claim is not None:  # overlapping claim: the earlier one never ended
                close(None)
            open_claim = event
    if open_claim is not None:
        close(None)
    return tuple(attempts)


def build_timelines(history: History) -> dict[int, NoteTimeline]:
    """One timeline per note id known to any witness (ledger, client, spans)."""
    notes = {n.id: n for n in history.notes}
    events: dict[int, list[LedgerEvent]] = defaultdict(list)
    for event in history.events:
        events[event.note_id].append(event)
    spans: dict[int, list[SpanRecord]] = defaultdict(list)
    for span in history.spans:
        if span.note_id is not None:
            spans[span.note_id].append(span)

    ids = set(notes) | set(events) | set(history.accepted) | set(spans)
    timelines: dict[int, NoteTimeline] = {}
    for note_id in sorted(ids):
        note = notes.get(note_id)
        note_spans = tuple(sorted(spans.get(note_id, ()), key=lambda s: s.start_ns))
        by_attempt: dict[int, list[SpanRecord]] = defaultdict(list)
        for span in note_spans:
            number = span_attempt(span)
            # a "skipped" span is a job that found nothing to claim: not the attempt's own
            if span.name == ATTEMPT_SPAN and number is not None and span_outcome(span) != "skipped":
                by_attempt[number].append(span)
        note_events = tuple(events.get(note_id, ()))
        trace_ids = {s.trace_id for s in note_spans}
        if note is not None and note.trace_id:
            trace_ids.add(note.trace_id)
        job_ids = {e.job_id for e in note_events if e.job_id}
        job_ids |= {
            str(s.attributes[ATTR_JOB_ID]) for s in note_spans if ATTR_JOB_ID in s.attributes
        }
        if note is not None and note.job_id:
            job_ids.add(note.job_id)
        timelines[note_id] = NoteTimeline(
            note_id=note_id,
            note=note,
            events=note_events,
            attempts=build_attempts(note_events, {k: tuple(v) for k, v in by_attempt.items()}),
            spans=note_spans,
            accepted_at=history.accepted.get(note_id),
            trace_ids=tuple(sorted(trace_ids)),
            job_ids=frozenset(job_ids),
        )
    return timelines


def job_owners(timelines: Mapping[int, NoteTimeline]) -> dict[str, int]:
    """Job id -> the note it belongs to, from ledger events, note rows and spans."""
    return {job: t.note_id for t in timelines.values() for job in t.job_ids}
