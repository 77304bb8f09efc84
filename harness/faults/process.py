"""Process faults on a worker: SIGKILL of the worker or only its work-horse, SIGTERM (warm
or forced shutdown) and SIGSTOP/SIGCONT.

``target`` is ``busy`` (a worker running a job), ``any`` or ``worker-N``.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from harness.errors import HarnessConfigError
from harness.faults.base import Fault

if TYPE_CHECKING:
    from harness.processes import PipelineProcess

WORKER_TARGETS = "'busy', 'any' or 'worker-N'"


class WorkerFault(Fault):
    """Base of the faults that pick one worker of the stack."""

    victim: PipelineProcess | None = None

    @classmethod
    def check_target(cls, target: str) -> None:
        if target not in ("busy", "any") and not (
            target.startswith("worker-") and target[len("worker-") :].isdigit()
        ):
            raise HarnessConfigError(
                f"fault {cls.kind} needs target {WORKER_TARGETS}, not {target!r}"
            )

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


class KillWorker(WorkerFault):
    """SIGKILL a worker and its work-horse; heal starts a replacement."""

    kind = "kill_worker"

    def inject(self) -> None:
        self.victim = self.pick_worker()
        self.target = self.victim.name
        self.victim.kill()

    def heal(self) -> None:
        if self.victim is not None:
            self.stack.replace_worker(self.victim)


class KillHorse(WorkerFault):
    """SIGKILL only the work-horse; the worker parent lives on."""

    kind = "kill_horse"

    def inject(self) -> None:
        victim = self.pick_worker()
        self.target = victim.name
        victim.kill_horse()


class TermWorker(WorkerFault):
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


class PauseWorker(WorkerFault):
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
