"""Faults: each has ``inject`` and ``heal``; the schedule runs heal in ``finally``.

A fault acts on one target of a :class:`harness.stack.PipelineStack`: a worker
process, a service (Redis, PostgreSQL) or the network path to a service (a
Toxiproxy proxy). Faults are built from data (:class:`FaultSpec`) by
:func:`build_fault`, so schedules stay replayable.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from harness.errors import HarnessConfigError

if TYPE_CHECKING:
    from harness.processes import PipelineProcess
    from harness.stack import PipelineStack


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault, as data: start ``at`` seconds into the run, heal after ``duration``."""

    kind: str
    at: float
    duration: float = 0.0
    target: str = "any"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at,
            "duration": self.duration,
            "target": self.target,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        unknown = set(data) - {"kind", "at", "duration", "target", "params"}
        if unknown:
            raise HarnessConfigError(f"fault spec has unknown keys {sorted(unknown)}: {dict(data)}")
        spec = cls(
            kind=str(data["kind"]),
            at=float(data["at"]),
            duration=float(data.get("duration", 0.0)),
            target=str(data.get("target", "any")),
            params=dict(data.get("params", {})),
        )
        validate_spec(spec)
        return spec


class Fault:
    """Base: a fault with a description of what it hit (``target``) once injected."""

    kind = "fault"

    def __init__(self, stack: PipelineStack, spec: FaultSpec, rng: random.Random) -> None:
        self.stack = stack
        self.spec = spec
        self.rng = rng
        self.target = spec.target

    def inject(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo the fault; a no-op for faults that heal themselves."""


class _WorkerFault(Fault):
    victim: PipelineProcess | None = None

    def pick_worker(self) -> PipelineProcess:
        """``target``: ``busy`` (a worker running a job, else any), ``any``, or ``worker-N``."""
        workers = [w for w in self.stack.workers if w.alive()]
        if not workers:
            raise HarnessConfigError("no live worker to inject a fault into")
        if self.spec.target.startswith("worker-"):
            named = [w for w in workers if w.name == self.spec.target]
            if not named:
                raise HarnessConfigError(f"no live worker named {self.spec.target}")
            return named[0]
        if self.spec.target == "busy":
            busy = [w for w in workers if w.horses()]
            if busy:
                workers = busy
        return self.rng.choice(workers)


class KillWorker(_WorkerFault):
    """SIGKILL a worker and its work-horse; heal starts a replacement."""

    kind = "kill_worker"

    def inject(self) -> None:
        self.victim = self.pick_worker()
        self.target = self.victim.name
        self.victim.kill()

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim)


class KillHorse(_WorkerFault):
    """SIGKILL only the work-horse; the worker parent lives on."""

    kind = "kill_horse"

    def inject(self) -> None:
        victim = self.pick_worker()
        self.target = victim.name
        victim.kill_horse()


class TermWorker(_WorkerFault):
    """SIGTERM: warm shutdown (the current job finishes); ``forced`` sends a second one
    (RQ's cold shutdown kills the horse). Heal starts a replacement."""

    kind = "term_worker"

    def inject(self) -> None:
        self.victim = self.pick_worker()
        self.target = self.victim.name
        self.victim.signal_leader(signal.SIGTERM)
        if self.spec.params.get("forced"):
            self.stack.wait_a_moment_for_shutdown_start(self.victim)
            self.victim.signal_leader(signal.SIGTERM)

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim, wait_exit=True)


class PauseWorker(_WorkerFault):
    """SIGSTOP the worker and its horse (past the lease); heal sends SIGCONT."""

    kind = "pause_worker"

    def inject(self) -> None:
        self.victim = self.pick_worker()
        self.target = self.victim.name
        self.horses = self.victim.descendants()
        self.victim.pause()
        for pid in self.horses:
            self.stack.signal_pid(pid, signal.SIGSTOP)

    def heal(self) -> None:
        if self.victim is not None:
            for pid in self.horses:
                self.stack.signal_pid(pid, signal.SIGCONT)
            self.victim.resume()


class RestartService(Fault):
    """Stop (``mode``: ``kill`` or ``stop``) Redis or PostgreSQL; heal starts it again.
    ``keep_data`` false wipes it (a Redis without persistence loses everything anyway)."""

    kind = "restart_service"

    def inject(self) -> None:
        service = self.stack.service(self.spec.target)
        if self.spec.params.get("mode", "kill") == "kill":
            service.kill()
        else:
            service.stop()

    def heal(self) -> None:
        service = self.stack.service(self.spec.target)
        service.restart(keep_data=bool(self.spec.params.get("keep_data", True)))


class PauseService(Fault):
    kind = "pause_service"

    def inject(self) -> None:
        self.stack.service(self.spec.target).pause()

    def heal(self) -> None:
        self.stack.service(self.spec.target).resume()


class ProxyDown(Fault):
    """The network path to a service is cut (Toxiproxy ``enabled=false``)."""

    kind = "proxy_down"

    def inject(self) -> None:
        self.stack.proxy(self.spec.target).disable()

    def heal(self) -> None:
        self.stack.proxy(self.spec.target).enable()


class ProxyToxic(Fault):
    """A Toxiproxy toxic on the path to a service: ``params`` = ``{"type": "latency",
    "attributes": {...}, "stream": "downstream", "toxicity": 1.0}``."""

    kind = "toxic"

    def inject(self) -> None:
        params = dict(self.spec.params)
        self.toxic_name = f"{params['type']}_{self.rng.randrange(1 << 30):x}"
        self.stack.proxy(self.spec.target).add_toxic(
            name=self.toxic_name,
            type=str(params["type"]),
            stream=str(params.get("stream", "downstream")),
            toxicity=float(params.get("toxicity", 1.0)),
            attributes=dict(params.get("attributes", {})),
        )

    def heal(self) -> None:
        self.stack.proxy(self.spec.target).remove_toxic(self.toxic_name)


class ScaleWorkers(Fault):
    """Scale the worker pool by ``params.delta`` (``+N`` starts N workers and waits until RQ
    knows them, ``-N`` stops N with a warm shutdown, idle ones first); heal restores the pool
    size found at inject."""

    kind = "scale_workers"

    def inject(self) -> None:
        delta = int(self.spec.params["delta"])
        self.original = len(self.stack.workers)
        if delta < 0 and -delta > self.original:
            raise HarnessConfigError(
                f"scale_workers delta {delta} would remove more than the {self.original} workers"
            )
        self._resize(self.original + delta)
        self.target = f"workers {self.original}->{len(self.stack.workers)}"

    def heal(self) -> None:
        if hasattr(self, "original"):
            self._resize(self.original)

    def _resize(self, count: int) -> None:
        from harness.processes import wait_worker_registered

        added = []
        while len(self.stack.workers) < count:
            added.append(self.stack.add_worker())
        if added and self.stack.observer is not None:
            for worker in added:  # scaled up = serving: each new worker registered with RQ
                wait_worker_registered(self.stack.observer.redis_dsn, worker)
        while len(self.stack.workers) > count:
            # Idle live workers first, newest first: the least work interrupted. A dead worker
            # stays: another fault's heal replaces it.
            candidates = [w for w in reversed(self.stack.workers) if w.alive()]
            victim = min(candidates or self.stack.workers[::-1], key=lambda w: bool(w.horses()))
            self.stack.remove_worker(victim)


class KillAtAttempt(_WorkerFault):
    """SIGKILL the worker holding a note in a given attempt (a lifecycle point): ``params``
    ``{"note_index": i | "any", "attempt": k, "timeout": s}``. Waits (polling the ledger,
    up to ``timeout`` s, default 60) until the ``i``-th note in the ledger (by id, from 0),
    or any note, is ``processing`` in attempt ``k``, then kills the worker named in its
    ``worker`` column, work-horse included. Heal starts a replacement.

    The wait blocks the schedule's thread: later faults start after it."""

    kind = "kill_at_attempt"
    DEFAULT_TIMEOUT = 60.0

    note_id: int | None = None
    hit: bool = False

    def inject(self) -> None:
        import psycopg

        from harness.wait import wait_until

        observer = self.stack.observer
        if observer is None:
            raise HarnessConfigError("kill_at_attempt needs a started stack")
        attempt = int(self.spec.params["attempt"])
        index = self.spec.params["note_index"]
        timeout = float(self.spec.params.get("timeout", self.DEFAULT_TIMEOUT))
        where = "any note" if index == "any" else f"note #{index}"

        def holder() -> tuple[int, PipelineProcess] | None:
            with psycopg.connect(observer.database_dsn, connect_timeout=5) as conn:
                row = self._processing(conn, index, attempt)
            if row is None:
                return None
            worker = self._worker_named(row[1])
            return (row[0], worker) if worker is not None else None

        note_id, victim = wait_until(
            holder,
            timeout,
            describe=f"{where} to be processing in attempt {attempt}",
            interval=0.02,
            max_interval=0.1,
            transient=(psycopg.OperationalError,),
        )
        self.note_id, self.victim = note_id, victim
        victim.kill()
        # The kill hit the lifecycle point if the ledger still shows the dead worker's claim.
        with psycopg.connect(observer.database_dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT status, attempt, worker FROM notes WHERE id = %s", (note_id,)
            ).fetchone()
        self.hit = bool(
            row and row[0] == "processing" and row[1] == attempt and self._matches(row[2], victim)
        )
        missed = "" if self.hit else ", missed: the attempt ended first"
        self.target = f"{victim.name} (note {note_id}, attempt {attempt}{missed})"

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim)

    @staticmethod
    def _processing(conn: Any, index: Any, attempt: int) -> tuple[int, str] | None:
        if index == "any":
            row = conn.execute(
                "SELECT id, worker FROM notes WHERE status = 'processing' AND attempt = %s "
                "AND worker IS NOT NULL ORDER BY id LIMIT 1",
                (attempt,),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT id, worker, status, attempt FROM notes ORDER BY id OFFSET %s LIMIT 1",
                (int(index),),
            ).fetchone()
            if row is None or row[2] != "processing" or row[3] != attempt or row[1] is None:
                return None
        return (int(row[0]), str(row[1])) if row else None

    @staticmethod
    def _matches(ledger_worker: str | None, worker: PipelineProcess) -> bool:
        """The ledger names RQ workers ``notepipe.<host>.<pid>``, ``.rN`` after a restart of
        RQ's loop inside the same process."""
        name = worker.rq_worker_name
        return ledger_worker is not None and (
            ledger_worker == name or ledger_worker.startswith(f"{name}.r")
        )

    def _worker_named(self, ledger_worker: str) -> PipelineProcess | None:
        for worker in self.stack.workers:
            if worker.alive() and self._matches(ledger_worker, worker):
                return worker
        return None


FAULT_KINDS: dict[str, Callable[[PipelineStack, FaultSpec, random.Random], Fault]] = {
    cls.kind: cls
    for cls in (
        KillWorker,
        KillHorse,
        TermWorker,
        PauseWorker,
        RestartService,
        PauseService,
        ProxyDown,
        ProxyToxic,
        ScaleWorkers,
        KillAtAttempt,
    )
}

SERVICE_TARGETS = ("redis", "postgres")
TOXIC_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
)


def validate_spec(spec: FaultSpec) -> None:
    """Refuse a bad fault before anything starts, saying how to fix it."""
    if spec.kind not in FAULT_KINDS:
        raise HarnessConfigError(
            f"unknown fault kind {spec.kind!r}; valid kinds: {', '.join(sorted(FAULT_KINDS))}"
        )
    if spec.at < 0 or spec.duration < 0:
        raise HarnessConfigError(f"fault {spec.kind}: 'at' and 'duration' must be >= 0 seconds")
    service_kinds = ("restart_service", "pause_service", "proxy_down", "toxic")
    if spec.kind in service_kinds and spec.target not in SERVICE_TARGETS:
        raise HarnessConfigError(
            f"fault {spec.kind} needs target 'redis' or 'postgres', not {spec.target!r}"
        )
    if spec.kind == "toxic" and spec.params.get("type") not in TOXIC_TYPES:
        raise HarnessConfigError(
            f"toxic fault needs params.type in {', '.join(TOXIC_TYPES)}; got {spec.params.get('type')!r}"
        )
    if spec.kind == "scale_workers":
        delta = spec.params.get("delta")
        if not _is_int(delta) or delta == 0:
            raise HarnessConfigError(
                f"scale_workers needs params.delta, a non-zero number of workers to add (+N) "
                f"or remove (-N); got {delta!r}"
            )
    if spec.kind == "kill_at_attempt":
        _validate_kill_at_attempt(spec.params)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_kill_at_attempt(params: Mapping[str, Any]) -> None:
    unknown = set(params) - {"note_index", "attempt", "timeout"}
    if unknown:
        raise HarnessConfigError(
            f"kill_at_attempt: unknown params {sorted(unknown)}; "
            "use note_index, attempt and (optionally) timeout"
        )
    index = params.get("note_index")
    if index != "any" and not (_is_int(index) and index >= 0):
        raise HarnessConfigError(
            "kill_at_attempt needs params.note_index: the note's position in the ledger "
            f"(0 = the first accepted) or 'any'; got {index!r}"
        )
    attempt = params.get("attempt")
    if not (_is_int(attempt) and attempt >= 1):
        raise HarnessConfigError(
            f"kill_at_attempt needs params.attempt, an attempt number >= 1; got {attempt!r}"
        )
    timeout = params.get("timeout", KillAtAttempt.DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise HarnessConfigError(
            f"kill_at_attempt: params.timeout must be a positive number of seconds; got {timeout!r}"
        )


def build_fault(stack: PipelineStack, spec: FaultSpec, rng: random.Random) -> Fault:
    validate_spec(spec)
    return FAULT_KINDS[spec.kind](stack, spec, rng)
