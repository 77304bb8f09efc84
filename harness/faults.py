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
from typing import TYPE_CHECKING, Any

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


def build_fault(stack: PipelineStack, spec: FaultSpec, rng: random.Random) -> Fault:
    validate_spec(spec)
    return FAULT_KINDS[spec.kind](stack, spec, rng)
