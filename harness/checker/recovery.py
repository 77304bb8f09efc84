"""Invariants on how attempts end: causes, and the reconciler's recoveries.

* ``attempt_causes_expected`` — every attempt's end records a known cause that
  matches its transition and that its note's content asks for (or that a fault
  overlapping the attempt explains): a healthy note's attempt lost to lease expiry
  with no fault around is a lease the pipeline failed to keep.
* ``recovery_only_of_dead_attempts`` — a recovery (cause ``lease_expired``) records
  the ``lease_until`` it saw, happens no sooner than that plus ``lease_grace``, and
  that lease is not older than the attempt's own evidence of holding it (its claim's
  lease, and the last renewal its span reports). And the attempt was dead, or cut
  off, when its lease ran out: if its span shows it still running past
  ``lease_until + lease_grace``, a fault must have covered the lease's last stretch
  (ongoing until less than ``heartbeat_interval`` + :data:`RENEW_SLACK_S` before the
  expiry); otherwise a live attempt's heartbeat stopped renewing.
* ``recovery_within_lag`` — ... and no later than ``recovery_lag_s`` past
  ``lease_until + lease_grace`` unless a fault on a service (Redis, PostgreSQL, their
  network) overlapped that wait: a too-lazy reconciler. Worker faults excuse nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from harness.checker.causes import end_problem, overlapping_faults
from harness.checker.context import CheckContext, Violation
from harness.checker.timeline import Attempt, ns_to_datetime
from harness.spans import ATTR_LEASE_UNTIL
from notepipe.models import EndCause

#: Both a recovery and the leases it compares are stamped by the ledger's one clock.
CLOCK_TOLERANCE = timedelta(milliseconds=5)
#: Time a live heartbeat may need, past its period, to renew once a fault is over
#: (reconnecting included).
RENEW_SLACK_S = 0.5
#: Faults on worker processes: they kill or stop attempts, but cannot delay the
#: reconciler (its own process), so they excuse no late recovery.
WORKER_FAULTS: frozenset[str] = frozenset(
    {"kill_worker", "kill_horse", "term_worker", "pause_worker", "kill_at_attempt", "scale_workers"}
)


def attempt_causes_expected(ctx: CheckContext) -> list[Violation]:
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        for a in t.attempts:
            problem = end_problem(t, a, ctx.config, ctx.history.faults)
            if problem is not None:
                out.append(
                    ctx.violation(
                        "attempt_causes_expected",
                        t.note_id,
                        f"attempt {a.number} {problem}",
                        attempt=a.number,
                        job_id=a.claim.job_id,
                    )
                )
    return out


def _span_lease(a: Attempt) -> datetime | None:
    """The latest lease the attempt's span says it held."""
    found: list[datetime] = []
    for span in a.spans:
        value = span.attributes.get(ATTR_LEASE_UNTIL)
        if not value:
            continue
        try:
            stamp = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        if stamp.tzinfo is not None:
            found.append(stamp)
    return max(found, default=None)


def _recoveries(ctx: CheckContext) -> list[tuple[int, Attempt]]:
    return [
        (t.note_id, a)
        for t in ctx.ledger_timelines()
        for a in t.attempts
        if a.end is not None and a.end.cause == EndCause.LEASE_EXPIRED
    ]


def recovery_only_of_dead_attempts(ctx: CheckContext) -> list[Violation]:
    out: list[Violation] = []
    grace = timedelta(seconds=ctx.config.lease_grace)
    for note_id, a in _recoveries(ctx):
        end = a.end
        assert end is not None

        def bad(message: str, nid: int = note_id, attempt: Attempt = a) -> None:
            out.append(
                ctx.violation(
                    "recovery_only_of_dead_attempts",
                    nid,
                    message,
                    attempt=attempt.number,
                    job_id=attempt.claim.job_id,
                )
            )

        seen = end.lease_until
        if seen is None:
            bad("recovered without recording the lease_until it saw")
            continue
        evidence = [
            (stamp, source)
            for stamp, source in ((a.claim.lease_until, "its claim"), (_span_lease(a), "its span"))
            if stamp is not None
        ]
        held_until, source = max(evidence, default=(seen, "the recovery"))
        if seen + CLOCK_TOLERANCE < held_until:
            bad(
                f"recovery recorded lease_until {seen.isoformat()}, but {source} shows the "
                f"attempt held its lease until {held_until.isoformat()}"
            )
        live_until = max(seen, held_until)
        alive = _alive_past_lease(ctx, a, live_until)
        if alive is not None:
            bad(alive)
        if end.at + CLOCK_TOLERANCE < live_until + grace:
            early = (live_until + grace - end.at).total_seconds()
            bad(
                f"recovered at {end.at.isoformat()}, {early:.3f}s before lease_until "
                f"{live_until.isoformat()} + lease_grace {ctx.config.lease_grace}s: "
                "a live lease was taken"
            )
    return out


def _alive_past_lease(ctx: CheckContext, a: Attempt, lease_until: datetime) -> str | None:
    """Why the attempt's span shows a live attempt losing its lease with no fault to
    explain it, or ``None``."""
    if not a.spans:
        return None  # killed: no span survives, and nothing says it lived
    ran_until = max(ns_to_datetime(s.end_ns) for s in a.spans)
    expired = lease_until + timedelta(seconds=ctx.config.lease_grace)
    if ran_until <= expired + timedelta(seconds=ctx.config.span_clock_tolerance_s):
        return None  # it ended (without a write) before its lease ran out
    reach = timedelta(seconds=ctx.config.heartbeat_interval + RENEW_SLACK_S)
    covering = [
        f for f in ctx.history.faults if f.start <= lease_until and f.end >= lease_until - reach
    ]
    if covering:
        return None  # paused, killed or cut off from the ledger as its lease ran out
    return (
        f"its span ran until {ran_until.isoformat()}, past its lease_until "
        f"{lease_until.isoformat()} + grace, and no fault covered that expiry: the live "
        "attempt stopped renewing its lease (heartbeat) and was taken over"
    )


def recovery_within_lag(ctx: CheckContext) -> list[Violation]:
    out: list[Violation] = []
    grace = timedelta(seconds=ctx.config.lease_grace)
    lag = timedelta(seconds=ctx.config.recovery_lag_s)
    for note_id, a in _recoveries(ctx):
        end = a.end
        assert end is not None
        if end.lease_until is None:
            continue  # recovery_only_of_dead_attempts reports it
        due = end.lease_until + grace
        service_faults = [f for f in ctx.history.faults if f.kind not in WORKER_FAULTS]
        if end.at <= due + lag or overlapping_faults(service_faults, due, end.at):
            continue
        late = (end.at - due).total_seconds()
        out.append(
            ctx.violation(
                "recovery_within_lag",
                note_id,
                f"recovered {late:.3f}s after its lease ran out ({end.lease_until.isoformat()} "
                f"+ grace {ctx.config.lease_grace}s); allowed {ctx.config.recovery_lag_s}s",
                attempt=a.number,
                job_id=a.claim.job_id,
            )
        )
    return out
