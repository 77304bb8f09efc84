"""Faults: each has ``inject`` and ``heal``; the schedule runs heal in ``finally``.

A fault acts on one target of a :class:`harness.stack.PipelineStack`: a worker process
(:mod:`~harness.faults.process`), a service (:mod:`~harness.faults.service`), the
network path to a service, a Toxiproxy proxy (:mod:`~harness.faults.network`), or a
point of the pipeline's life (:mod:`~harness.faults.lifecycle`). Faults are built from
data (:class:`FaultSpec`) by :func:`build_fault`, so schedules stay replayable; each
class validates its own spec, found by its ``kind`` in :data:`FAULT_KINDS`.
"""

from __future__ import annotations

from harness.faults.base import FAULT_KINDS, Fault, build_fault, fault_class, validate_spec
from harness.faults.effect import Effect, FaultMissed
from harness.faults.lifecycle import KillAtAttempt, ScaleWorkers
from harness.faults.network import TOXIC_TYPES, ProxyDown, ProxyToxic
from harness.faults.process import KillHorse, KillWorker, PauseWorker, TermWorker, WorkerFault
from harness.faults.service import SERVICE_TARGETS, PauseService, RestartService, ServiceFault
from harness.faults.spec import FaultSpec

__all__ = [
    "FAULT_KINDS",
    "SERVICE_TARGETS",
    "TOXIC_TYPES",
    "Effect",
    "Fault",
    "FaultMissed",
    "FaultSpec",
    "KillAtAttempt",
    "KillHorse",
    "KillWorker",
    "PauseService",
    "PauseWorker",
    "ProxyDown",
    "ProxyToxic",
    "RestartService",
    "ScaleWorkers",
    "ServiceFault",
    "TermWorker",
    "WorkerFault",
    "build_fault",
    "fault_class",
    "validate_spec",
]
