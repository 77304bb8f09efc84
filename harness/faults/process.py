"""Process faults on a worker: SIGKILL of the worker or only its work-horse, SIGTERM (warm
or forced shutdown) and SIGSTOP/SIGCONT.

``target`` is ``busy``, ``any`` or ``worker-N``. *Busy means busy*: the fault waits (up to
``params.timeout`` s) for a worker the ledger shows holding a note, freezes it (SIGSTOP of
the worker and its horse), reads its claims again while it cannot change them, and only
then acts. No busy worker by the deadline is a miss, never a silent fallback to an idle
one. ``params.min_age`` (s) asks for a worker whose attempt has run at least that long (by
the database's clock): a fault aimed at a point late in a long attempt. Each fault records
the pid it hit and the notes and attempts it interrupted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from harness.checker.holders import (
    Claim,
    attempt_ended_by_itself,
    processing_claims,
)
from harness.errors import HarnessConfigError
from harness.faults.base import Fault, FaultRun
from harness.faults.effect import Effect, FaultMissed
from harness.faults.params import is_positive_number, refuse_unknown
from harness.faults.witness import fate_of_attempts
from harness.wait import WaitTimeout, wait_until

if TYPE_CHECKING:
    from harness.processes import PipelineProcess

WORKER_TARGETS = "'busy', 'any' or 'worker-N'"
#: RQ's cold shutdown: a second SIGTERM counts only >= 1 s after the first.
RQ_SECOND_SIGNAL_AFTER_S = 1.1


#: How long :func:`settled_claims` waits for a frozen worker's in-flight write.
SETTLE_LOCK_TIMEOUT = "500ms"


class WorkerFault(Fault):
    """Base of the faults that pick one worker of the stack."""

    DEFAULT_TIMEOUT = 15.0
    PARAMS: tuple[str, ...] = ("timeout", "min_age")
    victim: PipelineProcess | None = None

    @classmethod
    def check_target(cls, target: str) -> None:
        if target not in ("busy", "any") and not (
            target.startswith("worker-") and target[len("worker-") :].isdigit()
        ):
            raise HarnessConfigError(
                f"fault {cls.kind} needs target {WORKER_TARGETS}, not {target!r}"
            )

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        refuse_unknown(cls.kind, params, cls.PARAMS)
        timeout = params.get("timeout", cls.DEFAULT_TIMEOUT)
        if not is_positive_number(timeout):
            raise HarnessConfigError(
                f"{cls.kind}: params.timeout (how long to wait for a busy worker) must be a "
                f"positive number of seconds; got {timeout!r}"
            )
        min_age = params.get("min_age", 0.0)
        if not (is_positive_number(min_age) or min_age == 0):
            raise HarnessConfigError(
                f"{cls.kind}: params.min_age (how long the busy worker's attempt must have "
                f"run) must be a number of seconds >= 0; got {min_age!r}"
            )

    # ------------------------------------------------------------------ the ledger
    def claims_of(self, worker: PipelineProcess) -> list[Claim]:
        with self.ledger() as conn:
            return _claims_of(conn, worker)

    def interrupted(self, claims: Sequence[Claim]) -> list[Claim]:
        """The claims whose attempt did not finish by itself: still ``processing`` (its
        worker is gone) or recovered by the reconciler (``lease_expired``)."""
        with self.ledger() as conn:
            return [c for c in claims if not attempt_ended_by_itself(conn, c.note_id, c.attempt)]

    # ------------------------------------------------------------------ picking
    def _named_or_any(self) -> PipelineProcess:
        workers = [w for w in self.stack.workers if w.alive()]
        if not workers:
            raise FaultMissed(f"{self.kind}: no live worker to inject a fault into")
        if self.spec.target.startswith("worker-"):
            named = [w for w in workers if w.name == self.spec.target]
            if not named:
                raise FaultMissed(f"{self.kind}: no live worker named {self.spec.target}")
            return named[0]
        return self.rng.choice(workers)

    def seize(self, *, need_horse: bool = False) -> tuple[PipelineProcess, list[Claim], list[int]]:
        """Pick the target worker and freeze it (worker and horses stopped); returns it, the
        claims it holds (read while frozen) and the frozen pids. The caller acts, then
        :meth:`thaw`\\ s what should live on. For ``busy``: wait for a worker holding a
        claim (and a horse, if ``need_horse``), or raise :class:`FaultMissed`."""
        if self.spec.target != "busy":
            victim = self._named_or_any()
            frozen = freeze(victim)
            return victim, self.claims_of(victim), frozen
        timeout = float(self.spec.params.get("timeout", self.DEFAULT_TIMEOUT))
        min_age = float(self.spec.params.get("min_age", 0.0))
        raced = [0]
        last_read = LedgerRead()

        def busy_worker() -> tuple[PipelineProcess, list[Claim], list[int]] | None:
            with self.ledger() as conn:
                claims = [c for c in processing_claims(conn) if c.age_s >= min_age]
            live = [w for w in self.stack.workers if w.alive()]
            last_read.update(claims, live)
            candidates = [w for w in live if any(w.recorded_as(c.worker) for c in claims)]
            if not candidates:
                return None
            victim = self.rng.choice(candidates)
            seized = freeze_holding(
                victim,
                self.ledger,
                lambda held: (
                    any(c.age_s >= min_age for c in held)
                    and (not need_horse or bool(victim.horses()))
                ),
            )
            if seized is None:
                raced[0] += 1
                return None
            return victim, *seized

        try:
            return wait_until(
                busy_worker,
                timeout,
                describe=f"a busy worker for {self.kind}",
                interval=0.02,
                max_interval=0.1,
                transient=(psycopg.OperationalError,),
            )
        except WaitTimeout as exc:
            raise FaultMissed(
                f"no worker was busy (holding a note in the ledger"
                f"{f' in an attempt at least {min_age:g} s old' if min_age else ''}) "
                f"within {timeout:g} s"
                f" ({raced[0]} finished its job while being seized; "
                f"{last_read.describe(exc.last_error)}); raise params.timeout or "
                "post slower notes"
            ) from None

    def describe(self, victim: PipelineProcess, claims: Sequence[Claim]) -> str:
        notes = ", ".join(f"note {c.note_id} attempt {c.attempt}" for c in claims)
        return f"{victim.name} pid {victim.pid}" + (f" ({notes})" if notes else " (idle)")

    @staticmethod
    def claim_list(claims: Sequence[Claim]) -> list[dict[str, int]]:
        return [c.to_dict() for c in claims]


class LedgerRead:
    """What the last poll for a busy worker saw, for the message of a miss: a miss with
    notes processing by no live worker of the stack is not the same story as an idle one."""

    def __init__(self) -> None:
        self.polls = 0
        self.claims: list[Claim] = []
        self.live: list[PipelineProcess] = []

    def update(self, claims: list[Claim], live: list[PipelineProcess]) -> None:
        self.polls += 1
        self.claims, self.live = claims, live

    def describe(self, last_error: BaseException | None) -> str:
        workers = ", ".join(f"{w.name} pid {w.pid}" for w in self.live) or "none"
        parts = [f"{self.polls} ledger reads"]
        if self.polls:
            held = ", ".join(
                f"note {c.note_id} by {c.worker}"
                + ("" if any(w.recorded_as(c.worker) for w in self.live) else " (no live worker)")
                for c in self.claims[:5]
            )
            more = f" and {len(self.claims) - 5} more" if len(self.claims) > 5 else ""
            parts.append(f"the last one: {len(self.claims)} processing ({held or '-'}{more})")
            parts.append(f"live workers: {workers}")
        if last_error is not None:
            parts.append(f"last ledger error: {last_error!r}")
        return "; ".join(parts)


def freeze_holding(
    worker: PipelineProcess,
    ledger: Callable[[], AbstractContextManager[psycopg.Connection[Any]]],
    holds: Callable[[list[Claim]], bool],
) -> tuple[list[Claim], list[int]] | None:
    """Freeze ``worker`` (:func:`freeze`) and read its :func:`settled_claims`. If they
    satisfy ``holds``, it stays frozen: returns the claims and the frozen pids. Otherwise,
    or if the read fails, it is thawed (its attempt ended as it froze: None, or the error)."""
    frozen = freeze(worker)
    try:
        with ledger() as conn:
            held = settled_claims(conn, worker)
        if holds(held):
            return held, frozen
    except BaseException:
        thaw(worker, frozen)
        raise
    thaw(worker, frozen)
    return None


def settled_claims(conn: psycopg.Connection[Any], worker: PipelineProcess) -> list[Claim]:
    """The claims of a frozen worker once the ledger writes it had in flight landed
    (``conn`` in autocommit).

    A horse stopped right after it sent its completion has not ended its attempt yet,
    but PostgreSQL commits that statement without it: a kill then interrupts nothing
    (CI: "attempts ended before the kill"). Taking a share lock on the claimed notes
    waits for such a write (it holds the row); a lock still held after
    ``SETTLE_LOCK_TIMEOUT`` belongs to a transaction the frozen horse must finish
    itself, which the kill aborts. Then the claims are read again."""
    held = _claims_of(conn, worker)
    if not held:
        return held
    with contextlib.suppress(psycopg.errors.LockNotAvailable), conn.transaction():
        conn.execute(f"SET LOCAL lock_timeout = '{SETTLE_LOCK_TIMEOUT}'")
        conn.execute(
            "SELECT id FROM notes WHERE id = ANY(%s) FOR SHARE",
            ([c.note_id for c in held],),
        )
    return _claims_of(conn, worker)


def _claims_of(conn: psycopg.Connection[Any], worker: PipelineProcess) -> list[Claim]:
    """The notes ``worker`` holds in the ledger now."""
    return [c for c in processing_claims(conn) if worker.recorded_as(c.worker)]


def freeze(worker: PipelineProcess) -> list[int]:
    """SIGSTOP the worker's group, then its horses (RQ's horse leaves the group)."""
    worker.pause()
    pids = worker.descendants()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    return pids


def thaw_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def thaw(worker: PipelineProcess, pids: Sequence[int]) -> None:
    thaw_pids(pids)
    worker.resume()


class KillWorker(WorkerFault):
    """SIGKILL a worker and its work-horse; heal starts a replacement. Records the pid and
    the attempts it interrupted; ``busy`` misses if none was interrupted."""

    kind = "kill_worker"

    def inject(self) -> None:
        victim, held, _ = self.seize()
        self.victim, self.target = victim, victim.name
        pid, horses = victim.pid, victim.horses()
        victim.kill()
        interrupted = self.interrupted(held)
        evidence = {
            "pid": pid,
            "horses": horses,
            "held": self.claim_list(held),
            "interrupted": self.claim_list(interrupted),
        }
        if victim.alive():
            self.effect.miss(f"{victim.name} pid {pid} survived SIGKILL", **evidence)
        elif self.spec.target == "busy" and not interrupted:
            self.effect.miss(f"{victim.name}'s attempts ended before the kill", **evidence)
        else:
            self.effect.bit(f"killed {self.describe(victim, interrupted)}", **evidence)

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim)

    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        effect.note(fate=fate_of_attempts(run.history, effect.evidence.get("interrupted", ())))


class KillHorse(WorkerFault):
    """SIGKILL only the work-horse; the worker parent lives on. A worker without a horse
    is a miss (there was nothing to kill)."""

    kind = "kill_horse"

    def inject(self) -> None:
        victim, held, frozen = self.seize(need_horse=True)
        self.target = victim.name
        horses = victim.horses()
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        thaw(victim, [p for p in frozen if p not in horses])
        interrupted = self.interrupted(held) if horses else []
        evidence = {
            "pid": victim.pid,
            "horses": horses,
            "held": self.claim_list(held),
            "interrupted": self.claim_list(interrupted),
        }
        if not horses:
            self.effect.miss(f"{victim.name} had no work-horse to kill", **evidence)
        elif self.spec.target == "busy" and not interrupted:
            self.effect.miss(f"{victim.name}'s attempts ended before the kill", **evidence)
        else:
            killed = ", ".join(map(str, horses))
            self.effect.bit(
                f"killed horse {killed} of {self.describe(victim, interrupted)}", **evidence
            )

    confirm = KillWorker.confirm


class TermWorker(WorkerFault):
    """SIGTERM: warm shutdown (the current job finishes); ``forced`` sends a second one
    1.1 s later (RQ ignores a second signal within 1 s), holding the horse stopped in
    between so its job is still running when RQ's cold shutdown kills it.
    Heal waits for the exit and starts a replacement.

    Records the jobs in flight at the (first) SIGTERM; ``forced`` also the attempts the
    cold shutdown interrupted (a miss if they all finished first)."""

    kind = "term_worker"
    PARAMS = ("timeout", "min_age", "forced")

    @property
    def forced(self) -> bool:
        return bool(self.spec.params.get("forced"))

    def inject(self) -> None:
        victim, held, frozen = self.seize()
        self.victim, self.target = victim, victim.name
        self.in_flight = held
        horses = victim.horses()
        # The horses stay stopped until the worker has the SIGTERM (forced: until the second
        # one, so the jobs in flight cannot finish in between: RQ ignores a second signal
        # less than 1 s after the first, longer than most jobs; RQ's cold shutdown then
        # SIGKILLs them).
        thaw(victim, [p for p in frozen if p not in horses])
        # To RQ's main thread itself: a signal to the process may be taken by another of its
        # threads (RQ's pubsub thread; the kernel passes over a main thread
        # that has a signal pending, as one waking from SIGSTOP has). Python runs the handler
        # only in the main thread, which stayed blocked in waitpid on the frozen horse: RQ
        # began no shutdown and counted the second SIGTERM as the first (the fault missed).
        victim.signal_main_thread(signal.SIGTERM)
        first = time.monotonic()
        if not self.forced:
            thaw_pids(horses)  # a warm shutdown lets the jobs in flight finish
        else:
            try:
                if not self.stack.wait_a_moment_for_shutdown_start(victim, 1.0):
                    # Delivered, yet RQ's handler did not run: the signal came just as the
                    # main thread went back into waitpid (after SIGCONT), and Python runs a
                    # handler only between instructions. Another SIGTERM interrupts that
                    # waitpid and runs it (RQ counts one warm shutdown request for both).
                    victim.signal_main_thread(signal.SIGTERM)
                    self.stack.wait_a_moment_for_shutdown_start(victim, 3.0)
                    first = time.monotonic()
                # A deliberate pause of RQ's protocol, not a wait for a condition.
                time.sleep(max(0.0, RQ_SECOND_SIGNAL_AFTER_S - (time.monotonic() - first)))
                victim.signal_main_thread(signal.SIGTERM)
                # Thawed too early, a horse could still finish before RQ kills it.
                with contextlib.suppress(WaitTimeout):
                    wait_until(
                        lambda: not victim.alive(),
                        5,
                        describe=f"{victim.name}'s cold shutdown",
                        interval=0.01,
                        max_interval=0.05,
                    )
            finally:
                thaw_pids(horses)
        evidence = {"pid": victim.pid, "in_flight": self.claim_list(held)}
        self.effect.bit(
            f"SIGTERM{' x2' if self.forced else ''} to {self.describe(victim, held)}", **evidence
        )

    def heal(self) -> None:
        if self.victim is None:
            return
        self.stack.replace_worker(self.victim, wait_exit=True)
        self.effect.note(exit_code=self.victim.proc.returncode)
        if self.forced:
            interrupted = self.interrupted(self.in_flight)
            self.effect.note(interrupted=self.claim_list(interrupted))
            if self.spec.target == "busy" and not interrupted:
                self.effect.miss(
                    f"{self.victim.name}'s jobs in flight finished before the second SIGTERM"
                )

    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        key = "interrupted" if "interrupted" in effect.evidence else "in_flight"
        effect.note(fate=fate_of_attempts(run.history, effect.evidence.get(key, ())))


class PauseWorker(WorkerFault):
    """SIGSTOP the worker and its horse (past the lease); heal sends SIGCONT. Records the
    attempts it froze; after the run, whether they were taken over (recovered)."""

    kind = "pause_worker"

    def inject(self) -> None:
        victim, held, frozen = self.seize()  # the freeze is the fault
        self.victim, self.target, self.horses = victim, victim.name, frozen
        self.effect.bit(
            f"paused {self.describe(victim, held)}",
            pid=victim.pid,
            horses=frozen,
            paused=self.claim_list(held),
        )

    def heal(self) -> None:
        if self.victim is not None:
            thaw(self.victim, self.horses)

    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        effect.note(fate=fate_of_attempts(run.history, effect.evidence.get("paused", ())))
