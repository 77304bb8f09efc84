"""What a pipeline stack did, read by the harness itself: the ledger, Redis and the spans.

:class:`StackObserver` connects to the services directly (no proxy, no pooler) with the
stack's direct settings, and reads the stack's spans from the run's collector. It answers
two questions: is the pipeline quiet (:meth:`~StackObserver.wait_quiescent`), and what is
its history (:meth:`~StackObserver.settled_history`, the checker's input). A witness that
cannot be read goes into :attr:`History.input_errors`, never into an empty history.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import psycopg
import redis

from harness.checker import (
    FaultWindow,
    History,
    LedgerEvent,
    LedgerNote,
    RqSnapshot,
    read_ledger,
    read_rq_snapshot,
)
from harness.checker.span_gaps import unwitnessed_attempts
from harness.checker.timeline import build_timelines
from harness.collector import TraceCollector
from harness.spans import SpanRecord
from harness.wait import WaitTimeout, wait_until
from notepipe.contracts import rq as rq_contract
from notepipe.settings import Settings


class StackObserver:
    """Reads one stack: ``direct`` holds the services' own addresses, ``stack_id`` tags the
    stack's spans in the (session-wide) ``collector``.

    Built before the stack's processes start: the collector's rejections counted from then
    on are this stack's, and make its trace witness incomplete."""

    def __init__(self, direct: Settings, collector: TraceCollector | None, stack_id: str) -> None:
        self.direct = direct
        self.collector = collector
        self.stack_id = stack_id
        self._baseline = (
            (collector.stats.rejected_requests, collector.stats.rejected_spans)
            if collector is not None
            else (0, 0)
        )

    # ---------------------------------------------------------------- quiescence
    def pending_work(self) -> dict[str, int]:
        """Non-terminal notes in the ledger and jobs left in Redis (read directly, raw)."""
        with psycopg.connect(self.direct.database_dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM notes WHERE status NOT IN ('completed', 'failed')"
            ).fetchone()
        client = redis.Redis.from_url(self.direct.redis_dsn, socket_timeout=5)
        q = self.direct.queue_name
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(rq_contract.queue_key(q))
                pipe.llen(rq_contract.intermediate_key(q))
                pipe.zcard(rq_contract.registry_key("started", q))
                pipe.zcard(rq_contract.registry_key("scheduled", q))
                queued, intermediate, started, scheduled = pipe.execute()
        finally:
            client.close()
        return {
            "active_notes": int(row[0]) if row else 0,
            "queued": int(queued),
            "intermediate": int(intermediate),
            "started": int(started),
            "scheduled": int(scheduled),
        }

    def wait_quiescent(self, timeout: float) -> dict[str, int]:
        """Until every note is terminal and Redis holds no queued/started/scheduled job;
        what is still pending at ``timeout`` (empty: quiet)."""
        last: dict[str, int] = {}

        def quiet() -> bool:
            nonlocal last
            last = self.pending_work()
            return not any(last.values())

        try:
            wait_until(
                quiet,
                timeout,
                describe="quiescence",
                interval=0.2,
                transient=(psycopg.OperationalError, redis.RedisError),
            )
        except WaitTimeout:
            return last
        return {}

    # ---------------------------------------------------------------- history
    def spans(self) -> list[SpanRecord]:
        """The collector's spans that belong to this stack (its processes and its faults)."""
        if self.collector is None:
            return []
        return [
            s
            for s in self.collector.spans()
            if s.resource.get("notepipe.stack") == self.stack_id
            or s.attributes.get("notepipe.stack") == self.stack_id
        ]

    def history(
        self, *, accepted: Mapping[int, datetime], faults: tuple[FaultWindow, ...] = ()
    ) -> History:
        """The ledger, the RQ snapshot and the spans as they are now."""
        errors: dict[str, str] = {}
        notes: tuple[LedgerNote, ...] = ()
        events: tuple[LedgerEvent, ...] = ()
        rq: RqSnapshot | None = None
        try:
            with psycopg.connect(self.direct.database_dsn, connect_timeout=10) as conn:
                notes, events = read_ledger(conn)
        except psycopg.Error as exc:
            errors["ledger"] = str(exc)
        client = redis.Redis.from_url(self.direct.redis_dsn, socket_timeout=10)
        try:
            rq = read_rq_snapshot(client, self.direct.queue_name)
        except redis.RedisError as exc:
            errors["rq"] = str(exc)
        finally:
            client.close()
        spans: tuple[SpanRecord, ...] = ()
        try:
            spans = tuple(self.spans())
        except Exception as exc:  # the span store is unreadable: the witness is missing
            errors["spans"] = f"the collector's spans could not be read: {exc!r}"
        problem = self.collector_problem()
        if problem is not None:
            errors.setdefault("spans", problem)
        return History(
            notes=notes,
            events=events,
            observed_at=datetime.now(UTC),
            spans=spans,
            rq=rq,
            faults=faults,
            accepted=dict(accepted),
            input_errors=errors,
        )

    def collector_problem(self) -> str | None:
        """Why the trace witness cannot be trusted for this stack, if it cannot."""
        if self.collector is None:
            return "this stack has no trace collector"
        if not self.collector.receiver.running:
            return "the trace collector is not running: no span could be received"
        stats = self.collector.stats
        rejected = (
            stats.rejected_requests - self._baseline[0],
            stats.rejected_spans - self._baseline[1],
        )
        if any(rejected):
            return (
                f"the trace collector rejected {rejected[0]} export request(s) and "
                f"{rejected[1]} span(s) during this run: the witness is incomplete"
            )
        return None

    def settled_history(
        self,
        *,
        accepted: Mapping[int, datetime],
        faults: tuple[FaultWindow, ...] = (),
        timeout: float = 10.0,
    ) -> History:
        """:meth:`history` once every attempt that ended by itself has its attempt span
        (re-read every 0.3 s, up to ``timeout``; the checker reports what is still missing).

        Waiting on the witness itself, not on the span count going quiet: the reconciler's
        pass spans keep that count growing for ever."""
        latest: list[History] = []

        def witnessed() -> bool:
            latest[:] = [self.history(accepted=accepted, faults=faults)]
            history = latest[0]
            if "ledger" in history.input_errors:
                return True
            return not unwitnessed_attempts(build_timelines(history).values(), faults)

        self.collector_settle(1.0)
        with contextlib.suppress(WaitTimeout):
            wait_until(
                witnessed,
                timeout,
                describe="every ended attempt's span",
                interval=0.3,
                max_interval=0.5,
            )
        return latest[0]

    def collector_settle(self, seconds: float) -> None:
        """Give exporters a few batch periods (``OTEL_BSP_SCHEDULE_DELAY``: 200 ms in a
        harness stack, for the API's batch processor and a worker's span relay alike) to
        deliver the spans they still hold, e.g. a resumed zombie's fenced attempt."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: time.monotonic() >= deadline, seconds + 1, describe="one export batch"
            )
