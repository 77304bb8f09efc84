"""Synthetic histories for the checker tests: a builder driven by per-note plans.

A *plan* is the list of what each attempt of a note does:

* ``ok`` — completes; ``error`` — fails, retried (or ``failed`` on the last attempt);
* ``timeout`` — killed by RQ at ``job_timeout`` (+ a little), retried likewise;
* ``kill`` — the worker dies (a ``kill_worker`` fault window over the attempt), the
  reconciler recovers it after lease expiry (no span);
* ``fatal`` — fails as non-retryable; ``fail`` — fails with an error its content
  never asked for (both: not as designed);
* ``hang`` — claimed, never ended (must be last); an empty plan leaves the note queued.

Each note's content carries the chaos directives its plan needs (``raise-until=N``
for errors up to attempt N, a ``sleep`` past ``job_timeout`` for timeouts), the way
the harness writes them, so causes are expected exactly when the plan is correct.
The builder follows the plan literally, so a plan past the budget builds an
over-budget history: the strategies decide what is valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from harness.checker.history import (
    CheckConfig,
    FaultWindow,
    History,
    LedgerEvent,
    LedgerNote,
    RqSnapshot,
)
from harness.spans import ATTEMPT_SPAN, ATTR_LEASE_UNTIL, SpanRecord

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
QUEUE = "note_enrichment"
LEASE = 5.0
GRACE = 1.0
LAG = 5.0
ENDING = ("ok", "fatal", "fail", "hang")
CAUSES = {"error": "error", "fail": "error", "timeout": "timeout", "kill": "lease_expired"}


def content_for(index: int, plan: list[str], job_timeout: float) -> str:
    """Plain text plus the directives that make ``plan`` the expected course."""
    errors = [k for k, kind in enumerate(plan, start=1) if kind == "error"]
    text = f"Note {index}: some words about the pipeline and its ledger."
    if errors:
        text += f" [chaos:raise-until={errors[-1]}]"
    if "timeout" in plan:
        text += f" [chaos:sleep={job_timeout + 1.0}]"
    return text


def enrichment_for(content: str) -> dict[str, dict[str, str]]:
    text = " ".join(content.split())
    return {"content_hash": {"sha256": hashlib.sha256(text.encode()).hexdigest()}}


def ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000) * 1000


def trace_of(note_id: int) -> str:
    return f"{note_id:032x}"


def job_of(note_id: int, attempt: int) -> str:
    """The job that carries ``attempt`` (enqueued after ``attempt - 1`` attempts)."""
    return f"note-{note_id}-a{attempt - 1}"


@dataclass(frozen=True)
class Params:
    max_attempts: int = 3
    retry_intervals: tuple[float, ...] = (2.0, 5.0)
    job_timeout: float = 30.0
    tolerance_s: float = 1.0

    def config(self, **overrides: object) -> CheckConfig:
        per_attempt = self.job_timeout + self.tolerance_s + LEASE + 15.0
        waits = sum(self.retry_interval(k) + 5.0 for k in range(1, self.max_attempts))
        deadline = self.max_attempts * per_attempt + waits + 20.0
        base = CheckConfig(
            max_attempts=self.max_attempts,
            retry_intervals=self.retry_intervals,
            job_timeout=self.job_timeout,
            deadline_s=deadline,
            tolerance_s=self.tolerance_s,
            lease_grace=GRACE,
            recovery_lag_s=LAG,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def retry_interval(self, k: int) -> float:
        return self.retry_intervals[min(k, len(self.retry_intervals)) - 1]


@dataclass
class Fractions:
    """The random choices inside a plan, in [0, 1): durations, pickups, extra waits."""

    values: list[float] = field(default_factory=list)
    i: int = 0

    def next(self) -> float:
        if not self.values:
            return 0.5
        value = self.values[self.i % len(self.values)]
        self.i += 1
        return value


@dataclass
class Builder:
    params: Params
    notes: list[LedgerNote] = field(default_factory=list)
    events: list[LedgerEvent] = field(default_factory=list)
    spans: list[SpanRecord] = field(default_factory=list)
    accepted: dict[int, datetime] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    failed_jobs: list[str] = field(default_factory=list)
    faults: list[FaultWindow] = field(default_factory=list)

    def note(self, note_id: int, plan: list[str], created: datetime, fr: Fractions) -> None:
        p = self.params
        trace = trace_of(note_id)
        events: list[LedgerEvent] = []
        content = content_for(note_id, plan, p.job_timeout)

        def ev(
            frm: str | None,
            to: str,
            attempt: int,
            at: datetime,
            *,
            lease: datetime | None = None,
            **kw: str | None,
        ) -> None:
            events.append(
                LedgerEvent(
                    note_id,
                    frm,
                    to,
                    attempt,
                    kw.get("worker"),
                    kw.get("job_id"),
                    at,
                    kw.get("error"),
                    kw.get("cause"),
                    lease,
                )
            )

        def span(attempt: int, start: datetime, end: datetime, outcome: str) -> None:
            self.spans.append(
                SpanRecord(
                    trace,
                    f"{note_id:08x}{attempt:08x}",
                    f"{note_id:016x}",
                    ATTEMPT_SPAN,
                    "notepipe-worker",
                    ns(start),
                    ns(end),
                    attributes={
                        "note.id": note_id,
                        "note.attempt": attempt,
                        "rq.job.id": job_of(note_id, attempt),
                        "rq.worker": f"w{attempt}",
                        "note.outcome": outcome,
                        ATTR_LEASE_UNTIL: (start + timedelta(seconds=LEASE)).isoformat(),
                    },
                )
            )

        self.accepted[note_id] = created + timedelta(milliseconds=5)
        self.spans.append(
            SpanRecord(
                trace,
                f"{note_id:016x}",
                None,
                "POST /notes",
                "notepipe-api",
                ns(created),
                ns(created + timedelta(milliseconds=5)),
                kind="SERVER",
                attributes={"note.id": note_id},
            )
        )
        ev(None, "pending", 0, created)
        t = created + timedelta(seconds=0.01 + fr.next())
        ev("pending", "queued", 0, t, job_id=job_of(note_id, 1))
        status, last_error, completed_at = "queued", None, None
        for k, kind in enumerate(plan, start=1):
            job, worker = job_of(note_id, k), f"w{k}"
            claim = t + timedelta(seconds=0.01 + 2 * fr.next())
            lease = claim + timedelta(seconds=LEASE)
            ev(status, "processing", k, claim, worker=worker, job_id=job, lease=lease)
            status = "processing"
            self.statuses[job] = "started"
            if kind == "hang":
                break
            last = k == len(plan)
            if kind == "ok":
                t = claim + timedelta(seconds=0.01 + (p.job_timeout - 0.02) * fr.next())
                ev("processing", "completed", k, t, worker=worker, job_id=job, cause="completed")
                span(k, claim, t, "completed")
                status, completed_at = "completed", t
                self.statuses[job] = "finished"
                break
            if kind in ("fatal", "fail"):
                t = claim + timedelta(seconds=0.01 + fr.next())
                last_error = "non-retryable: ValueError: bad input" if kind == "fatal" else "boom"
                cause = "non_retryable" if kind == "fatal" else "error"
                ev(
                    "processing",
                    "failed",
                    k,
                    t,
                    worker=worker,
                    job_id=job,
                    error=last_error,
                    cause=cause,
                )
                span(k, claim, t, "failed")
                status = "failed"
                self.statuses[job] = "failed"
                self.failed_jobs.append(job)
                break
            end_job: str | None = job
            seen: datetime | None = None
            if kind == "timeout":
                t = claim + timedelta(seconds=p.job_timeout + p.tolerance_s * 0.5 * fr.next())
                last_error = f"attempt {k} failed (timeout): Task exceeded maximum timeout value"
            elif kind == "kill":  # the reconciler's words (notepipe.store.ledger.recover_expired)
                seen = lease
                t = lease + timedelta(seconds=GRACE + (LAG - 0.1) * fr.next())
                last_error = f"attempt {k} lost its lease (worker {worker} stopped renewing it)"
                end_job = None
                kill_at = claim + timedelta(seconds=0.005)
                self.faults.append(
                    FaultWindow("kill_worker", worker, kill_at, kill_at + timedelta(seconds=0.5))
                )
            else:
                t = claim + timedelta(seconds=0.01 + p.job_timeout * 0.9 * fr.next())
                last_error = f"attempt {k} failed (RuntimeError): boom"
            status = "failed" if last else "queued"
            ev(
                "processing",
                status,
                k,
                t,
                worker=worker,
                job_id=end_job,
                error=last_error,
                cause=CAUSES.get(kind, "error"),
                lease=seen,
            )
            if kind != "kill":
                span(k, claim, t, "failed" if last else "retry")
            self.statuses[job] = "failed"
            self.failed_jobs.append(job)
            if last:
                break
            t += timedelta(seconds=p.retry_interval(k) + 5 * fr.next())
        self.events.extend(events)
        attempts = max((e.attempt for e in events), default=0)
        self.notes.append(
            LedgerNote(
                note_id,
                status,
                attempts,
                created,
                completed_at,
                status == "completed",
                last_error,
                job_of(note_id, max(attempts, 1)),
                trace,
                content,
                enrichment_for(content) if status == "completed" else None,
            )
        )

    def history(self, **overrides: object) -> History:
        last = max([e.at for e in self.events], default=T0)
        live = [j for j, s in self.statuses.items() if s == "started"]
        rq = RqSnapshot(
            queue_name=QUEUE,
            started_job_ids=tuple(live),
            started_entries=tuple((f"{j}:exec", 0.0) for j in live),
            failed_job_ids=tuple(self.failed_jobs),
            finished_job_ids=tuple(j for j, s in self.statuses.items() if s == "finished"),
            job_statuses=dict(self.statuses),
        )
        history = History(
            notes=tuple(self.notes),
            events=tuple(self.events),
            observed_at=last + timedelta(seconds=1),
            spans=tuple(self.spans),
            rq=rq,
            faults=tuple(self.faults),
            accepted=dict(self.accepted),
        )
        return replace(history, **overrides)  # type: ignore[arg-type]


def build(
    params: Params,
    plans: list[list[str]],
    fractions: list[float] | None = None,
    **overrides: object,
) -> History:
    """One history: note ``i + 1`` follows ``plans[i]``, created 3 s after the previous one."""
    builder = Builder(params)
    fr = Fractions(list(fractions or []))
    for i, plan in enumerate(plans):
        builder.note(i + 1, plan, T0 + timedelta(seconds=3 * i), fr)
    return builder.history(**overrides)


# --- strategies -------------------------------------------------------------------------

params_st = st.builds(
    Params,
    max_attempts=st.integers(2, 4),
    retry_intervals=st.lists(st.floats(2.0, 20.0), min_size=1, max_size=3).map(tuple),
    job_timeout=st.floats(5.0, 60.0),
    tolerance_s=st.floats(0.5, 2.0),
)


@st.composite
def valid_plan(draw: st.DrawFn, max_attempts: int) -> list[str]:
    """A plan a correct pipeline may produce for the content it asks for: errors first,
    then timeouts or a completion, kills anywhere; completed or failed within the budget."""
    plan: list[str] = []
    for _ in range(max_attempts):
        if "timeout" in plan:
            choices = ["timeout", "kill"]
        else:
            choices = ["ok", "ok", "error", "timeout", "kill"]
        kind = draw(st.sampled_from(choices))
        plan.append(kind)
        if kind == "ok":
            break
    return plan


@st.composite
def valid_case(draw: st.DrawFn) -> tuple[Params, list[list[str]], History]:
    """Valid histories; note 1 always fails once then completes (mutations aim at it)."""
    params = draw(params_st)
    others = draw(st.lists(valid_plan(params.max_attempts), min_size=0, max_size=5))
    plans = [["error", "ok"], *others]
    fractions = draw(st.lists(st.floats(0.0, 0.999), min_size=1, max_size=20))
    return params, plans, build(params, plans, fractions)
