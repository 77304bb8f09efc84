"""Benchmark: time from a worker SIGKILL to the next attempt of its job, notepipe vs bare RQ.

Run: ``.venv/bin/python benchmarks/recovery.py [--repeats 3] [--cap 180]``.
Prints figures; asserts nothing.

One local Redis and PostgreSQL serve both sides, in the same run:

* **notepipe**, with the scenario settings (``harness.stack.SCENARIO_SETTINGS``:
  lease_ttl 2, heartbeat 0.5, lease_grace 0.5, reconcile_interval 0.5, job_timeout 4):
  two ``notepipe worker`` processes and a ``notepipe reconcile`` process. Per
  repeat a note that sleeps 1.5 s (chaos stage) is stored and enqueued the way
  the API does; once it is ``processing``, the worker holding it is SIGKILLed
  (its process group and its work-horse). Recovery = the ledger's ``processing``
  event of attempt 2 minus the kill time. The killed worker is then replaced.
* **bare RQ**, ``repeats`` independent pairs of ``rq worker --with-scheduler``
  (``rq.worker.Worker``, RQ's defaults otherwise), each pair on its own queue,
  all started first so they wait in parallel: a job (:func:`slow_job`,
  ``job_timeout`` 4, ``Retry(max=1)``) is enqueued, the worker that took it is
  SIGKILLed (group and horse, which calls ``setpgrp``), the other stays alive.
  Recovery = the job's second start minus the kill time, or ``> cap`` when it
  has not run again ``--cap`` seconds after the kill.

This module is imported by every bare RQ work-horse (the job function lives
here), so its top level imports only the standard library.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.processes import PipelineProcess
    from notepipe.settings import Settings

SLOW_JOB = "recovery.slow_job"
JOB_SECONDS = 1.5
RUNS_KEY = "bench:recovery:runs:{}"


def slow_job(seconds: float) -> str:
    """The bare RQ job: record this run's start time, then sleep."""
    from rq import get_current_job

    job = get_current_job()
    assert job is not None
    job.connection.rpush(RUNS_KEY.format(job.id), repr(time.time()))
    time.sleep(seconds)
    return job.id


def _fmt(value: float | None, cap: float) -> str:
    return f"> {cap:.0f} s (cap)" if value is None else f"{value:6.2f} s"


# ------------------------------------------------------------------------------ bare RQ
class BarePair:
    """Two bare ``rq worker`` processes on one queue, one job; the job's holder is killed."""

    def __init__(self, redis_url: str, index: int, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.queue = f"bare_recovery_{index}"
        self.job_id = f"bare-recovery-{index}"
        self.index = index
        self.log_dir = log_dir
        self.workers: list[PipelineProcess] = []
        self.killed_at: float | None = None

    def start(self) -> None:
        from _bare_worker import spawn_bare_worker

        for side in ("a", "b"):
            worker = spawn_bare_worker(
                f"bare-{self.index}{side}", self.redis_url, self.queue, self.log_dir
            )
            self.workers.append(worker)

    def wait_registered(self, client: Any) -> None:
        from _bare_worker import rq_name

        from harness.wait import wait_until

        names = [rq_name(w.name) for w in self.workers]
        wait_until(
            lambda: all(client.exists(f"rq:worker:{n}") for n in names),
            60,
            describe=f"bare pair {self.index} to register",
        )

    def enqueue_and_kill(self, client: Any) -> None:
        from rq import Queue, Retry
        from rq.serializers import JSONSerializer

        from harness.wait import wait_until

        queue = Queue(self.queue, connection=client, serializer=JSONSerializer)
        queue.enqueue(SLOW_JOB, JOB_SECONDS, job_id=self.job_id, job_timeout=4, retry=Retry(max=1))
        wait_until(
            lambda: client.llen(RUNS_KEY.format(self.job_id)) >= 1,
            60,
            describe=f"bare job {self.job_id} to start",
            interval=0.01,
        )
        holder = client.hget(f"rq:job:{self.job_id}", "worker_name").decode()
        victim = next(w for w in self.workers if holder.startswith(w.name + "."))
        self.killed_at = time.time()
        victim.kill()  # the group, and the horse found through /proc (it left the group)

    def recovery(self, client: Any) -> float | None:
        runs = client.lrange(RUNS_KEY.format(self.job_id), 0, -1)
        if len(runs) < 2 or self.killed_at is None:
            return None
        return float(runs[1]) - self.killed_at

    def stop(self) -> None:
        for worker in self.workers:
            worker.kill()


# ----------------------------------------------------------------------------- notepipe
class NotepipeStack:
    """Two ``notepipe worker`` processes and a ``notepipe reconcile`` process."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.workers: list[PipelineProcess] = []
        self.dead: list[PipelineProcess] = []
        self.reconciler: PipelineProcess | None = None
        self.next_index = 0
        self.env = {"OTEL_SDK_DISABLED": "true"}

    def add_worker(self) -> None:
        from harness.processes import start_worker, wait_worker_registered

        worker = start_worker(
            self.settings, self.log_dir, index=self.next_index, extra_env=self.env
        )
        self.next_index += 1
        self.workers.append(worker)
        wait_worker_registered(self.settings.redis_dsn, worker, timeout=60)

    def start(self) -> None:
        from harness.processes import start_reconciler

        self.add_worker()
        self.add_worker()
        self.reconciler = start_reconciler(self.settings, self.log_dir, extra_env=self.env)

    def one_repeat(self, conn: Any, queue: Any) -> float:
        from harness.wait import wait_until
        from notepipe.store import ledger

        content = f"[chaos:sleep={JOB_SECONDS}] recovery benchmark note"
        row = ledger.create_note(conn, content, {"source": "bench-recovery"}, {})
        note_id = int(row["id"])
        ledger.mark_queued(conn, note_id, queue.enqueue_note(note_id))

        def holder() -> str | None:
            note = conn.execute(
                "SELECT worker FROM notes WHERE id = %s AND status = 'processing' AND attempt = 1",
                (note_id,),
            ).fetchone()
            return str(note["worker"]) if note and note["worker"] else None

        name = wait_until(holder, 60, describe=f"note {note_id} attempt 1", interval=0.01)
        victim = next(w for w in self.workers if w.recorded_as(name))
        killed_at = time.time()
        victim.kill()
        self.workers.remove(victim)
        self.dead.append(victim)

        def next_attempt() -> float | None:
            event = conn.execute(
                "SELECT extract(epoch FROM at) AS at FROM note_events"
                " WHERE note_id = %s AND to_status = 'processing' AND attempt = 2",
                (note_id,),
            ).fetchone()
            return float(event["at"]) if event else None

        recovered_at = wait_until(
            next_attempt, 120, describe=f"note {note_id} attempt 2", interval=0.05
        )

        def terminal() -> bool:
            note = ledger.get_note(conn, note_id)
            return bool(note and note["status"] in ("completed", "failed"))

        wait_until(terminal, 60, describe=f"note {note_id} to be terminal")
        self.add_worker()  # back to two workers for the next repeat
        return recovered_at - killed_at

    def stop(self) -> None:
        for process in [*self.workers, *self.dead]:
            process.kill()
        if self.reconciler is not None:
            self.reconciler.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cap", type=float, default=180.0, help="seconds to wait for bare RQ")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith(("OTEL_", "NOTEPIPE_"))]:
        del os.environ[key]
    os.environ["OTEL_SDK_DISABLED"] = "true"

    import redis

    from harness import reaper
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from harness.stack import SCENARIO_SETTINGS
    from harness.wait import wait_until
    from notepipe.queue.enqueue import RQNoteQueue
    from notepipe.settings import load_settings
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    reaper.install()
    redis_service, postgres = LocalRedis(), LocalPostgres()
    pairs: list[BarePair] = []
    stack: NotepipeStack | None = None
    notepipe: list[float] = []
    try:
        redis_service.start()
        postgres.start()
        settings = load_settings(
            **SCENARIO_SETTINGS, redis_url=redis_service.url, database_url=postgres.url
        )
        bare_url = redis_service.url.rsplit("/", 1)[0] + "/1"  # its own Redis database
        with connect(settings) as conn:
            migrate(conn)
        with tempfile.TemporaryDirectory(prefix="bench-recovery-") as logs:
            log_dir = Path(logs)
            bare_client = redis.Redis.from_url(bare_url)
            for index in range(args.repeats):
                pair = BarePair(bare_url, index, log_dir)
                pairs.append(pair)
                pair.start()
            stack = NotepipeStack(settings, log_dir)
            stack.start()
            for pair in pairs:
                pair.wait_registered(bare_client)
                pair.enqueue_and_kill(bare_client)
            print(
                f"bare RQ: {len(pairs)} pairs killed mid-job; waiting up to {args.cap:.0f} s "
                "each while notepipe runs",
                flush=True,
            )
            client = redis.Redis.from_url(settings.redis_dsn)
            queue = RQNoteQueue(settings, client)
            with connect(settings) as conn:
                for repeat in range(args.repeats):
                    seconds = stack.one_repeat(conn, queue)
                    notepipe.append(seconds)
                    print(f"  notepipe repeat {repeat + 1}: {seconds:.2f} s", flush=True)
            client.close()
            stack.stop()
            stack = None

            def bare_done() -> bool:
                now = time.time()
                return all(
                    p.recovery(bare_client) is not None or now - (p.killed_at or now) >= args.cap
                    for p in pairs
                )

            wait_until(bare_done, args.cap + 60, describe="bare RQ jobs", interval=0.5)
            bare = [p.recovery(bare_client) for p in pairs]
            bare_client.close()
    finally:
        if stack is not None:
            stack.stop()
        for pair in pairs:
            pair.stop()
        postgres.stop()
        redis_service.stop()

    for index, value in enumerate(bare):
        print(f"  bare RQ pair {index + 1}: {_fmt(value, args.cap)}")
    recovered = sorted(v for v in bare if v is not None)
    bare_median: float | None = None
    if len(recovered) * 2 > len(bare):
        bare_median = sorted(v if v is not None else float("inf") for v in bare)[len(bare) // 2]
    print(
        f"\nSIGKILL -> next attempt, median of {args.repeats}:"
        f"\n  notepipe (lease_ttl {settings.lease_ttl:g}, lease_grace {settings.lease_grace:g}, "
        f"reconcile_interval {settings.reconcile_interval:g}): "
        f"{statistics.median(notepipe):.2f} s  (min {min(notepipe):.2f}, max {max(notepipe):.2f})"
        f"\n  bare RQ (defaults, job_timeout 4, Retry(max=1)):   {_fmt(bare_median, args.cap)}"
        f"  ({len(recovered)}/{len(bare)} re-ran within the cap)"
    )


if __name__ == "__main__":
    main()
