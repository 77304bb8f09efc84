"""Lifecycle faults: a kill aimed at a point of a note's life (``kill_at_attempt``) and
a change of the worker pool's size (``scale_workers``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessConfigError
from harness.faults.base import Fault
from harness.faults.effect import FaultMissed
from harness.faults.params import is_int, is_positive_number, refuse_unknown
from harness.faults.process import KillWorker

if TYPE_CHECKING:
    from harness.processes import PipelineProcess


class ScaleWorkers(Fault):
    """Scale the worker pool by ``params.delta`` (``+N`` starts N workers and waits until RQ
    knows them, ``-N`` stops N with a warm shutdown, idle ones first); heal restores the pool
    size found at inject."""

    kind = "scale_workers"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        delta = params.get("delta")
        if not is_int(delta) or delta == 0:
            raise HarnessConfigError(
                f"scale_workers needs params.delta, a non-zero number of workers to add (+N) "
                f"or remove (-N); got {delta!r}"
            )
        refuse_unknown(cls.kind, params, ["delta"])

    def inject(self) -> None:
        delta = int(self.spec.params["delta"])
        self.original = len(self.stack.workers)
        if delta < 0 and -delta > self.original:
            raise HarnessConfigError(
                f"scale_workers delta {delta} would remove more than the {self.original} workers"
            )
        before = {w.name for w in self.stack.workers}
        self._resize(self.original + delta)
        after = {w.name for w in self.stack.workers}
        self.target = f"workers {self.original}->{len(self.stack.workers)}"
        evidence = {"started": sorted(after - before), "stopped": sorted(before - after)}
        if len(self.stack.workers) == self.original + delta:
            self.effect.bit(f"pool {self.target}", **evidence)
        else:
            self.effect.miss(
                f"the pool is {len(self.stack.workers)}, not {self.original + delta}", **evidence
            )

    def heal(self) -> None:
        if hasattr(self, "original"):
            self._resize(self.original)

    def _resize(self, count: int) -> None:
        from harness.processes import wait_worker_registered

        added = []
        while len(self.stack.workers) < count:
            added.append(self.stack.add_worker())
        if added and self.stack.direct_settings is not None:
            for worker in added:  # scaled up = serving: each new worker registered with RQ
                wait_worker_registered(self.stack.direct_settings.redis_dsn, worker)
        while len(self.stack.workers) > count:
            # Idle live workers first, newest first: the least work interrupted. A dead worker
            # stays: another fault's heal replaces it.
            candidates = [w for w in reversed(self.stack.workers) if w.alive()]
            victim = min(candidates or self.stack.workers[::-1], key=lambda w: bool(w.horses()))
            self.stack.remove_worker(victim)


class KillAtAttempt(Fault):
    """SIGKILL the worker holding a note in a given attempt (a lifecycle point): ``params``
    ``{"note_index": i | "any", "attempt": k, "timeout": s}``. Waits (polling the ledger,
    up to ``timeout`` s, default 60) until the ``i``-th note in the ledger (by id, from 0),
    or any note, is ``processing`` in attempt ``k``, then kills the worker named in its
    ``worker`` column, work-horse included. Heal starts a replacement.

    The wait blocks the schedule's thread: later faults start after it."""

    kind = "kill_at_attempt"
    DEFAULT_TIMEOUT = 60.0

    victim: PipelineProcess | None = None
    note_id: int | None = None
    hit: bool = False

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        unknown = set(params) - {"note_index", "attempt", "timeout"}
        if unknown:
            raise HarnessConfigError(
                f"kill_at_attempt: unknown params {sorted(unknown)}; "
                "use note_index, attempt and (optionally) timeout"
            )
        index = params.get("note_index")
        if index != "any" and not (is_int(index) and index >= 0):
            raise HarnessConfigError(
                "kill_at_attempt needs params.note_index: the note's position in the ledger "
                f"(0 = the first accepted) or 'any'; got {index!r}"
            )
        attempt = params.get("attempt")
        if not (is_int(attempt) and attempt >= 1):
            raise HarnessConfigError(
                f"kill_at_attempt needs params.attempt, an attempt number >= 1; got {attempt!r}"
            )
        timeout = params.get("timeout", cls.DEFAULT_TIMEOUT)
        if not is_positive_number(timeout):
            raise HarnessConfigError(
                "kill_at_attempt: params.timeout must be a positive number of seconds; "
                f"got {timeout!r}"
            )

    def inject(self) -> None:
        import psycopg

        from harness.checker.holders import (
            attempt_ended_by_itself,
            attempt_fate,
            processing_in_attempt,
        )
        from harness.faults.process import freeze_holding
        from harness.wait import WaitTimeout, wait_until

        attempt = int(self.spec.params["attempt"])
        index = self.spec.params["note_index"]
        timeout = float(self.spec.params.get("timeout", self.DEFAULT_TIMEOUT))
        where = "any note" if index == "any" else f"note #{index}"

        def holder() -> tuple[int, PipelineProcess] | None:
            """The note and its holder, frozen while the ledger shows it holding the note
            in ``attempt``: a kill then hits that point however long the kill and the
            reading of its result take (a lease may expire meanwhile)."""
            with self.ledger() as conn:
                claim = processing_in_attempt(conn, index, attempt)
            worker = self._worker_named(claim.worker) if claim is not None else None
            if claim is None or worker is None:
                return None
            seized = freeze_holding(
                worker,
                self.ledger,
                lambda held: any(c.note_id == claim.note_id and c.attempt == attempt for c in held),
            )
            return (claim.note_id, worker) if seized is not None else None

        try:
            note_id, victim = wait_until(
                holder,
                timeout,
                describe=f"{where} to be processing in attempt {attempt}",
                interval=0.02,
                max_interval=0.1,
                transient=(psycopg.OperationalError,),
            )
        except WaitTimeout as exc:
            raise FaultMissed(str(exc)) from None
        self.note_id, self.victim = note_id, victim
        pid = victim.pid
        victim.kill()
        # Frozen holding the attempt, killed frozen: the attempt cannot have ended by itself
        # (completed, error, timeout), whatever took it over since (the reconciler, once
        # the lease expired). The ledger shows it.
        with self.ledger() as conn:
            self.hit = not attempt_ended_by_itself(conn, note_id, attempt)
            fate = "" if self.hit else attempt_fate(conn, note_id, attempt)
        missed = "" if self.hit else ", missed: the attempt ended first"
        self.target = f"{victim.name} (note {note_id}, attempt {attempt}{missed})"
        point = {"note": note_id, "attempt": attempt}
        if self.hit:
            self.effect.bit(
                f"killed {victim.name} pid {pid} in note {note_id} attempt {attempt}",
                pid=pid,
                interrupted=[point],
            )
        else:
            self.effect.miss(
                f"note {note_id} attempt {attempt} ended before the kill: {fate}", pid=pid
            )

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim)

    confirm = KillWorker.confirm

    def _worker_named(self, ledger_worker: str) -> PipelineProcess | None:
        for worker in self.stack.workers:
            if worker.alive() and worker.recorded_as(ledger_worker):
                return worker
        return None
