"""Benchmark: end-to-end notepipe throughput next to bare RQ no-op jobs, in the same run.

Run: ``.venv/bin/python benchmarks/throughput.py [--notes 2000] [--workers 1,2]``.
Prints figures; asserts nothing. Goal: notepipe >= 0.8x bare RQ with the same
worker class (``rq.worker.Worker``, fork per job) and worker count.

One local Redis and one local PostgreSQL serve every run (wiped in between;
tracing off everywhere). Per worker count, three runs:

* **bare RQ**: ``--notes`` no-op jobs (:func:`noop`, JSON serializer) enqueued,
  then that many ``rq worker --burst`` processes started;
* **notepipe minimal**: ``--notes`` notes stored and enqueued the way the API does
  (``ledger.create_note`` + ``RQNoteQueue.enqueue_note`` + ``ledger.mark_queued``),
  then ``notepipe worker --burst`` processes with ``NOTEPIPE_STAGES`` = normalize
  + content_hash (the pipeline's own cost: claim, lease, complete, events);
* **notepipe default**: the same with the six default stages (plus enrichment).

Everything is enqueued before any worker starts. Two rates per run:
``steady`` = jobs / (first job ``started_at`` .. last job ``ended_at``), from
RQ's job hashes (worker start-up excluded, the same clock for both); ``wall`` =
jobs / (workers spawned .. all jobs finished), start-up included (notepipe's
parent loads the stages' models once, before its first job).

This module is imported by every bare RQ work-horse (the job function lives
here), so its top level imports only the standard library.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.processes import PipelineProcess
    from notepipe.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
NOOP = "throughput.noop"
BARE_QUEUE = "bare_noop"
MINIMAL_STAGES = "notepipe.stages.normalize:normalize,notepipe.stages.content_hash:content_hash"
TIMEOUT_S = 1800.0


def noop(index: int) -> int:
    """The bare RQ job: nothing at all."""
    return index


@dataclass
class Run:
    label: str
    workers: int
    jobs: int
    wall_s: float
    steady_s: float

    @property
    def wall(self) -> float:
        return self.jobs / self.wall_s

    @property
    def steady(self) -> float:
        return self.jobs / self.steady_s


def _wipe(settings: Settings) -> None:
    import redis

    from notepipe.store.db import connect

    with connect(settings) as conn:
        conn.execute("TRUNCATE note_events, notes RESTART IDENTITY CASCADE")
    client = redis.Redis.from_url(settings.redis_dsn)
    try:
        client.flushdb()
    finally:
        client.close()


def _steady_seconds(settings: Settings, job_ids: list[str]) -> float:
    """First ``started_at`` to last ``ended_at`` over the jobs, from RQ's job hashes."""
    import redis

    client = redis.Redis.from_url(settings.redis_dsn)
    try:
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at")
        rows = pipe.execute()
    finally:
        client.close()
    starts = [datetime.fromisoformat(r[0].decode()) for r in rows if r[0]]
    ends = [datetime.fromisoformat(r[1].decode()) for r in rows if r[1]]
    if len(starts) != len(job_ids) or len(ends) != len(job_ids):
        raise RuntimeError(
            f"only {len(ends)}/{len(job_ids)} jobs have an ended_at: did a worker die?"
        )
    return (max(ends) - min(starts)).total_seconds()


def _wait_done(describe: str, done: Any, processes: list[PipelineProcess], started: float) -> float:
    """Poll ``done()`` until true; return seconds since ``started``. Fails if workers died."""
    from harness.wait import wait_until

    def check() -> float | None:
        if done():
            return time.monotonic() - started
        if not any(p.alive() for p in processes):
            if done():
                return time.monotonic() - started
            logs = "\n".join(f"--- {p.name}\n{p.logs(20)}" for p in processes)
            raise RuntimeError(f"every worker exited before {describe}:\n{logs}")
        return None

    return wait_until(check, TIMEOUT_S, describe=describe, interval=0.05, max_interval=0.1)


def bare_rq(settings: Settings, workers: int, jobs: int, log_dir: Path) -> Run:
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from harness import reaper
    from harness.processes import PipelineProcess

    _wipe(settings)
    client = redis.Redis.from_url(settings.redis_dsn)
    queue = Queue(BARE_QUEUE, connection=client, serializer=JSONSerializer)
    job_ids = [f"noop-{i}" for i in range(jobs)]
    with client.pipeline() as pipe:
        for i, job_id in enumerate(job_ids):
            queue.enqueue(NOOP, i, job_id=job_id, result_ttl=3600, pipeline=pipe)
        pipe.execute()
    rq_bin = str(Path(sys.executable).parent / "rq")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEPIPE_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    processes: list[PipelineProcess] = []
    try:
        started = time.monotonic()
        for index in range(workers):
            name = f"bare-{workers}w-{index}"
            log_path = log_dir / f"{name}.log"
            cmd = [
                rq_bin,
                "worker",
                "--burst",
                "--with-scheduler",
                "--url",
                settings.redis_dsn,
                "--serializer",
                "rq.serializers.JSONSerializer",
                "--worker-class",
                "rq.worker.Worker",
                "--path",
                str(BENCH_DIR),
                "--name",
                f"{name}.{os.getpid()}",
                BARE_QUEUE,
            ]
            proc = reaper.spawn(cmd, env=env, cwd=BENCH_DIR, log_path=log_path)
            processes.append(PipelineProcess("worker", name, proc, log_path))

        def finished() -> bool:
            return int(client.llen(f"rq:queue:{BARE_QUEUE}")) == 0 and not any(
                p.alive() for p in processes
            )

        # Burst workers exit once the queue is empty and their last job is done.
        wall = _wait_done(f"{jobs} bare RQ jobs", finished, processes, started)
        steady = _steady_seconds(settings, job_ids)
    finally:
        for process in processes:
            process.kill()
        client.close()
    return Run("bare RQ no-op", workers, jobs, wall, steady)


def notepipe_run(
    settings: Settings, workers: int, notes: int, log_dir: Path, *, label: str, seed: int
) -> Run:
    import random

    import redis

    from harness.processes import start_worker
    from notepipe.capacity import note_body
    from notepipe.queue.enqueue import RQNoteQueue
    from notepipe.store import ledger
    from notepipe.store.db import connect

    _wipe(settings)
    rng = random.Random(seed)
    client = redis.Redis.from_url(settings.redis_dsn)
    queue = RQNoteQueue(settings, client)
    job_ids: list[str] = []
    processes: list[PipelineProcess] = []
    try:
        with connect(settings) as conn:
            for _ in range(notes):
                body = note_body(rng)
                row = ledger.create_note(conn, body["content"], body["metadata"], {})
                job_id = queue.enqueue_note(int(row["id"]), trace_context=row["trace_context"])
                ledger.mark_queued(conn, int(row["id"]), job_id)
                job_ids.append(job_id)
            env = {"OTEL_SDK_DISABLED": "true"}
            started = time.monotonic()
            for index in range(workers):
                processes.append(
                    start_worker(settings, log_dir, index=index, burst=True, extra_env=env)
                )

            def terminal() -> bool:
                row = conn.execute(
                    "SELECT count(*) AS n FROM notes WHERE status IN ('completed', 'failed')"
                ).fetchone()
                return bool(row and row["n"] == notes)

            wall = _wait_done(f"{notes} notes to be terminal", terminal, processes, started)
            failed = conn.execute(
                "SELECT count(*) AS n FROM notes WHERE status = 'failed'"
            ).fetchone()
            if failed and failed["n"]:
                print(f"  warning: {failed['n']} notes failed", flush=True)
        for process in processes:
            process.wait_exit(timeout=60)  # the last job's ended_at is written by now
        steady = _steady_seconds(settings, job_ids)
    finally:
        for process in processes:
            process.kill()
        client.close()
    return Run(label, workers, notes, wall, steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=2000, help="notes (and no-op jobs) per run")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    for key in [k for k in os.environ if k.startswith(("OTEL_", "NOTEPIPE_"))]:
        del os.environ[key]
    os.environ["OTEL_SDK_DISABLED"] = "true"

    from harness import reaper
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.settings import load_settings
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    reaper.install()
    redis_service, postgres = LocalRedis(), LocalPostgres()
    runs: list[Run] = []
    try:
        redis_service.start()
        postgres.start()
        base = load_settings(redis_url=redis_service.url, database_url=postgres.url)
        minimal = load_settings(**{**base.model_dump(), "stages": MINIMAL_STAGES.split(",")})
        with connect(base) as conn:
            migrate(conn)
        print(
            f"{args.notes} jobs per run; worker class rq.worker.Worker (fork per job); "
            f"tracing off; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as logs:
            log_dir = Path(logs)
            for workers in counts:
                for kind in ("bare", "minimal", "default"):
                    if kind == "bare":
                        run = bare_rq(base, workers, args.notes, log_dir / f"{kind}{workers}")
                    else:
                        run = notepipe_run(
                            minimal if kind == "minimal" else base,
                            workers,
                            args.notes,
                            log_dir / f"{kind}{workers}",
                            label=f"notepipe {kind}",
                            seed=workers,
                        )
                    runs.append(run)
                    print(
                        f"  {run.label:<18} {workers} worker(s): steady {run.steady:7.1f}/s  "
                        f"wall {run.wall:7.1f}/s  ({run.wall_s:.1f}s wall)",
                        flush=True,
                    )
    finally:
        postgres.stop()
        redis_service.stop()
    _table(runs)


def _table(runs: list[Run]) -> None:
    print(
        f"\n{'workers':>7}  {'run':<18} {'steady/s':>9} {'wall/s':>8}"
        f"  {'ratio steady':>12} {'ratio wall':>10}"
    )
    bare = {r.workers: r for r in runs if r.label == "bare RQ no-op"}
    ratios = []
    for run in runs:
        ref = bare.get(run.workers)
        steady = f"{run.steady / ref.steady:.2f}x" if ref and run is not ref else ""
        wall = f"{run.wall / ref.wall:.2f}x" if ref and run is not ref else ""
        if ref and run is not ref:
            ratios.append(run.steady / ref.steady)
        print(
            f"{run.workers:>7}  {run.label:<18} {run.steady:>9.1f} {run.wall:>8.1f}"
            f"  {steady:>12} {wall:>10}"
        )
    if ratios:
        print(
            f"(ratio = notepipe / bare RQ, same worker count; goal >= 0.8x; "
            f"median steady ratio {statistics.median(ratios):.2f}x)"
        )


if __name__ == "__main__":
    main()
