"""Service faults: Redis or PostgreSQL restarted (killed or stopped) or paused.

Each probes the service directly to show it bit: refused while down, silent while paused.
A Redis restart also counts the RQ jobs Redis lost (job ids and creation times read before
the kill and right after the restart), and after the run shows that the notes whose queued
jobs were lost were processed again, i.e. re-enqueued from the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessConfigError
from harness.faults.base import Fault, FaultRun
from harness.faults.effect import Effect
from harness.faults.params import refuse_unknown
from harness.faults.probe import Endpoint, probe
from harness.faults.witness import (
    claimed_after,
    client_stall_s,
    errors_in_window,
    final_status,
)
from harness.spans import ENQUEUE_SPAN

if TYPE_CHECKING:
    from harness.services.base import Service

SERVICE_TARGETS = ("redis", "postgres")
#: RQ job states in which a lost job means a note nobody will process unless re-enqueued.
WAITING_STATES = ("queued", "scheduled", "deferred")
#: ``notepipe.contracts.rq.job_id``: ``note-<id>-a<attempt>`` (parsed here, on purpose a copy).
_JOB_ID = re.compile(r"^note-(?P<note>\d+)-a\d+$")


class ServiceFault(Fault):
    """Base of the faults whose target is a service (or the network path to it)."""

    @classmethod
    def check_target(cls, target: str) -> None:
        if target not in SERVICE_TARGETS:
            raise HarnessConfigError(
                f"fault {cls.kind} needs target 'redis' or 'postgres', not {target!r}"
            )

    def service_endpoint(self) -> Endpoint:
        service = self.stack.service(self.spec.target)
        return Endpoint(self.spec.target, service.host, service.port, service.password)


def rq_jobs(redis_url: str, queue_name: str) -> dict[str, tuple[str, str]]:
    """Every RQ job of the queue: ``{job id: (status, created_at)}`` read key by key."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = [
            k.decode()
            for k in client.scan_iter(match="rq:job:*", count=1000)
            if b":" not in k[len(b"rq:job:") :]
        ]
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, ["status", "origin", "created_at"])
            rows = pipe.execute()
    finally:
        client.close()
    jobs = {}
    for key, (status, origin, created) in zip(keys, rows, strict=True):
        if origin is not None and origin.decode() != queue_name:
            continue
        jobs[key[len("rq:job:") :]] = (
            status.decode() if status else "",
            created.decode() if created else "",
        )
    return jobs


class RestartService(ServiceFault):
    """Stop (``mode``: ``kill`` or ``stop``) Redis or PostgreSQL; heal starts it again.
    ``keep_data`` false wipes it (a Redis without persistence loses everything anyway)."""

    kind = "restart_service"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        refuse_unknown(cls.kind, params, ["mode", "keep_data"])
        if params.get("mode", "kill") not in ("kill", "stop"):
            raise HarnessConfigError(
                f"restart_service: params.mode is 'kill' or 'stop'; got {params.get('mode')!r}"
            )

    def _service(self) -> Service:
        return self.stack.service(self.spec.target)

    def inject(self) -> None:
        service = self._service()
        self.jobs_before: dict[str, tuple[str, str]] | None = None
        if self.spec.target == "redis" and self.stack.direct_settings is not None:
            self.jobs_before = rq_jobs(
                self.stack.direct_settings.redis_dsn, self.stack.direct_settings.queue_name
            )
        elif self.stack.direct_settings is not None:
            self.effect.note(sessions_dropped=self._postgres_sessions())
        if self.spec.params.get("mode", "kill") == "kill":
            service.kill()
        else:
            service.stop()
        down = probe(self.service_endpoint(), timeout=1.0)
        self.effect.note(down_probe=down.to_dict())
        if down.failed:
            self.effect.bit(f"{self.spec.target} down ({down.outcome})")
        else:
            self.effect.miss(
                f"{self.spec.target} still answered after {self.spec.params.get('mode', 'kill')}"
            )

    def heal(self) -> None:
        self._service().restart(keep_data=bool(self.spec.params.get("keep_data", True)))
        before = getattr(self, "jobs_before", None)
        if before is None or self.stack.direct_settings is None:
            return
        after = rq_jobs(self.stack.direct_settings.redis_dsn, self.stack.direct_settings.queue_name)
        # Lost: gone, or re-created since (same id, a later creation: re-enqueued already).
        lost = sorted(
            j for j, (_, created) in before.items() if after.get(j, ("", ""))[1] != created
        )
        waiting = [j for j in lost if before[j][0] in WAITING_STATES]
        notes = sorted({int(m["note"]) for j in waiting if (m := _JOB_ID.match(j))})
        self.effect.note(
            jobs_before=len(before),
            jobs_lost=len(lost),
            jobs_survived=len(before) - len(lost),
            waiting_lost=len(waiting),
            started_lost=sum(1 for j in lost if before[j][0] == "started"),
            lost_notes=notes,
        )
        if self.effect.hit:
            self.effect.summary += (
                f"; Redis lost {len(lost)} of {len(before)} jobs ({len(waiting)} waiting)"
            )

    def _postgres_sessions(self) -> int:
        import psycopg

        try:
            with self.ledger() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
        except psycopg.Error:
            return -1
        return int(row[0]) if row else 0

    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        effect.note(
            errors_in_window=errors_in_window(run.history, run.client_ops, run.start, run.end),
            client_stall_s=round(client_stall_s(run.client_ops, run.start, run.end), 3),
        )
        lost = effect.evidence.get("lost_notes")
        if not lost:
            return
        again = [n for n in lost if claimed_after(run.history, n, run.start)]
        enqueues = sum(
            1
            for s in run.history.spans
            if s.name == ENQUEUE_SPAN
            and s.service == "notepipe-reconciler"
            and s.note_id in set(lost)
            and s.start_ns >= int(run.start.timestamp() * 1e9)
        )
        effect.note(
            reenqueued=again,
            not_reenqueued={n: final_status(run.history, n) for n in lost if n not in again},
            reconciler_enqueues=enqueues,
        )


class PauseService(ServiceFault):
    """SIGSTOP the service (it accepts connections but answers nothing); heal resumes it."""

    kind = "pause_service"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        refuse_unknown(cls.kind, params, [])

    def inject(self) -> None:
        self.stack.service(self.spec.target).pause()
        silent = probe(self.service_endpoint(), timeout=0.5)
        self.effect.note(probe=silent.to_dict())
        if silent.outcome == "timeout":
            self.effect.bit(f"{self.spec.target} paused: no answer in 0.5 s")
        else:
            self.effect.miss(f"{self.spec.target} still answered ({silent.outcome}) while paused")

    def heal(self) -> None:
        self.stack.service(self.spec.target).resume()
