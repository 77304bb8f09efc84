"""Benchmark: end-to-end notepipe throughput next to bare RQ no-op jobs, in the same run.

Run: ``.venv/bin/python benchmarks/throughput.py [--notes 300] [--workers 1,2]
[--sizes 256,1024,4096,16384] [--rounds 3]``. Prints figures; asserts nothing.
Goal: notepipe (default stages, 1 KiB notes) >= 0.8x bare RQ with the same worker
class (``rq.worker.Worker``, fork per job) and worker count.

One local Redis and one local PostgreSQL serve every run (wiped in between;
tracing off everywhere); notepipe workers reach PostgreSQL through a local PgBouncer,
as under ``notepipe stack up`` (``--no-pooler``: directly). Per round and worker count:

* **bare RQ**: ``--notes`` no-op jobs (:func:`noop`, JSON serializer, a 1 KiB
  argument) enqueued, then that many ``rq worker --burst`` processes started;
* **notepipe minimal** (per size): notes of that size stored and enqueued the way
  the API does (``ledger.create_note`` + ``RQNoteQueue.enqueue_note`` +
  ``ledger.mark_queued``), then ``notepipe worker --burst`` processes with
  ``NOTEPIPE_STAGES`` = normalize + content_hash (the pipeline's own cost: claim,
  lease, complete, events);
* **notepipe default** (per size): the same with the six default stages.

Rounds alternate the order of the runs (even rounds bare first, odd rounds bare
last). Everything is enqueued before any worker starts, and both sides are timed
the same way, from RQ's job hashes: ``wall`` = jobs / (workers spawned .. last
job ``ended_at``), worker start-up included and process exit excluded;
``steady`` = jobs / (first ``started_at`` .. last ``ended_at``); ``CPU`` = user +
system CPU per job of the workers (with their reaped horses) and the servers, from
``/proc`` (steadier than wall rates on a shared machine). Each notepipe
run's ratio is taken against the bare run of the same round and worker count;
the table shows medians over rounds. The 1-minute load average is printed with
every run (the machine may be shared; prefer the ratios).

This module is imported by every bare RQ work-horse (the job function lives
here), so its top level imports only the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _proc_cpu import process_cpu, tree_cpu

if TYPE_CHECKING:
    from harness.processes import PipelineProcess
    from notepipe.settings import Settings

NOOP = "throughput.noop"
BARE_QUEUE = "bare_noop"
BARE_ARG_BYTES = 1024
MINIMAL_STAGES = "notepipe.stages.normalize:normalize,notepipe.stages.content_hash:content_hash"
TIMEOUT_S = 1800.0


def noop(index: int, payload: str = "") -> int:
    """The bare RQ job: nothing at all."""
    return index


def sized_body(rng: Any, size: int) -> str:
    """A note of ``size`` bytes (ASCII): capacity-test words, a URL and a hashtag."""
    from harness.load import WORDS

    parts = [f"https://example.org/{rng.randrange(1000)} #bench"]
    length = len(parts[0])
    while length < size:
        word = rng.choice(WORDS)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:size]


def store_and_enqueue(
    conn: Any, queue: Any, content: str, trace_context: dict[str, str] | None = None
) -> str:
    """Store a note and enqueue its job the way the API does; return the job id."""
    from notepipe.store import ledger

    row = ledger.create_note(conn, content, {"source": "bench"}, {})
    note_id = int(row["id"])
    job_id: str = queue.enqueue_note(note_id, trace_context=trace_context or {})
    ledger.mark_queued(conn, note_id, job_id)
    return job_id


@dataclass
class Run:
    kind: str  # "bare", "minimal" or "default"
    size: int
    workers: int
    round: int
    jobs: int
    wall_s: float
    steady_s: float
    load: float
    cpu_s: float = 0.0  # workers (with their reaped horses) + Redis, PostgreSQL, PgBouncer

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.jobs

    @property
    def wall(self) -> float:
        return self.jobs / self.wall_s

    @property
    def steady(self) -> float:
        return self.jobs / self.steady_s


#: pids of the servers (Redis, PostgreSQL, PgBouncer) whose CPU a run is charged with
SERVER_PIDS: list[int] = []


def _server_cpu() -> float:
    """The servers' CPU with their descendants (PostgreSQL's long-lived backends)."""
    return tree_cpu(SERVER_PIDS)


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


def _utc(text: bytes) -> datetime:
    stamp = datetime.fromisoformat(text.decode())
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _job_times(client: Any, job_ids: list[str]) -> tuple[datetime, datetime] | None:
    """(first ``started_at``, last ``ended_at``) once every job ended, else None."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at", "status")
    rows = pipe.execute()
    if any(not r[1] or r[2] not in (b"finished", b"failed") for r in rows):
        return None
    return min(_utc(r[0]) for r in rows), max(_utc(r[1]) for r in rows)


def _timed_drain(
    client: Any, job_ids: list[str], queue: str, processes: list[PipelineProcess], t0: datetime
) -> tuple[float, float, float]:
    """Wait until every job ended (the same test for both sides); return (wall, steady) s
    and the workers' CPU seconds (last seen while alive: burst workers exit on their own)."""
    from harness.wait import wait_until

    registry = f"rq:finished:{queue}"
    failed = f"rq:failed:{queue}"
    worker_cpu: dict[int, float] = {}

    def check() -> tuple[datetime, datetime] | None:
        for process in processes:
            seen = process_cpu(process.pid)
            if seen:
                worker_cpu[process.pid] = seen
        done = int(client.zcard(registry)) + int(client.zcard(failed))
        if done >= len(job_ids):
            times = _job_times(client, job_ids)
            if times is not None:
                return times
        if not any(p.alive() for p in processes):
            times = _job_times(client, job_ids)
            if times is not None:
                return times
            logs = "\n".join(f"--- {p.name}\n{p.logs(20)}" for p in processes)
            raise RuntimeError(f"every worker exited before its {len(job_ids)} jobs ended:\n{logs}")
        return None

    first, last = wait_until(
        check, TIMEOUT_S, describe=f"{len(job_ids)} jobs to end", interval=0.05, max_interval=0.05
    )
    check()
    return (last - t0).total_seconds(), (last - first).total_seconds(), sum(worker_cpu.values())


def _stop(processes: list[PipelineProcess]) -> None:
    """Let burst workers exit on their own (outside the timing), then reap them."""
    import subprocess

    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait_exit(timeout=30)
        process.kill()


def bare_rq(settings: Settings, workers: int, jobs: int, log_dir: Path, rnd: int) -> Run:
    import redis
    from _bare_worker import spawn_bare_worker
    from rq import Queue
    from rq.serializers import JSONSerializer

    _wipe(settings)
    client = redis.Redis.from_url(settings.redis_dsn)
    queue = Queue(BARE_QUEUE, connection=client, serializer=JSONSerializer)
    job_ids = [f"noop-{i}" for i in range(jobs)]
    payload = "x" * BARE_ARG_BYTES
    with client.pipeline() as pipe:
        for i, job_id in enumerate(job_ids):
            queue.enqueue(NOOP, i, payload, job_id=job_id, result_ttl=3600, pipeline=pipe)
        pipe.execute()
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: list[PipelineProcess] = []
    try:
        servers = _server_cpu()
        t0 = datetime.now(UTC)
        for index in range(workers):
            processes.append(
                spawn_bare_worker(
                    f"bare-{workers}w-{index}", settings.redis_dsn, BARE_QUEUE, log_dir, burst=True
                )
            )
        wall, steady, cpu = _timed_drain(client, job_ids, BARE_QUEUE, processes, t0)
        cpu += _server_cpu() - servers
    finally:
        _stop(processes)
        client.close()
    return Run("bare", BARE_ARG_BYTES, workers, rnd, jobs, wall, steady, os.getloadavg()[0], cpu)


def notepipe_run(
    settings: Settings, workers: int, notes: int, log_dir: Path, *, kind: str, size: int, rnd: int
) -> Run:
    import random

    import redis

    from harness.processes import start_worker
    from notepipe.queue.enqueue import RQNoteQueue
    from notepipe.store.db import connect

    _wipe(settings)
    rng = random.Random(size * 31 + workers)
    client = redis.Redis.from_url(settings.redis_dsn)
    queue = RQNoteQueue(settings, client)
    job_ids: list[str] = []
    processes: list[PipelineProcess] = []
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with connect(settings) as conn:
            for _ in range(notes):
                job_ids.append(store_and_enqueue(conn, queue, sized_body(rng, size)))
            env = {"OTEL_SDK_DISABLED": "true"}
            servers = _server_cpu()
            t0 = datetime.now(UTC)
            for index in range(workers):
                processes.append(
                    start_worker(settings, log_dir, index=index, burst=True, extra_env=env)
                )
            wall, steady, cpu = _timed_drain(client, job_ids, settings.queue_name, processes, t0)
            cpu += _server_cpu() - servers
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'failed') AS failed,"
                " count(*) FILTER (WHERE status = 'completed') AS completed FROM notes"
            ).fetchone()
            if row and (row["failed"] or row["completed"] != notes):
                print(f"  warning: {row['completed']}/{notes} completed, {row['failed']} failed")
    finally:
        _stop(processes)
        client.close()
    return Run(kind, size, workers, rnd, notes, wall, steady, os.getloadavg()[0], cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=300, help="notes (and no-op jobs) per run")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--sizes", default="256,1024,4096,16384", help="note sizes in bytes")
    parser.add_argument("--stages", default="minimal,default", help="stage sets to run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (order alternates)")
    parser.add_argument(
        "--no-pooler", dest="pooler", action="store_false", help="workers connect directly"
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",") if w.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    kinds = [k.strip() for k in args.stages.split(",") if k.strip()]
    for key in [k for k in os.environ if k.startswith(("OTEL_", "NOTEPIPE_"))]:
        del os.environ[key]
    os.environ["OTEL_SDK_DISABLED"] = "true"

    from harness import reaper
    from harness.services.local_pgbouncer import LocalPgBouncer
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.settings import load_settings
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    reaper.install()
    redis_service, postgres = LocalRedis(), LocalPostgres()
    pooler = LocalPgBouncer(postgres) if args.pooler else None
    runs: list[Run] = []
    started = time.monotonic()
    try:
        redis_service.start()
        postgres.start()
        with connect(load_settings(database_url=postgres.url)) as conn:
            migrate(conn)
        if pooler is not None:
            pooler.start()
        database_url = pooler.url if pooler is not None else postgres.url
        for service in (redis_service, postgres, pooler):
            proc = getattr(service, "_proc", None)
            if proc is not None:
                SERVER_PIDS.append(proc.pid)
        base = load_settings(redis_url=redis_service.url, database_url=database_url)
        minimal = load_settings(**{**base.model_dump(), "stages": MINIMAL_STAGES.split(",")})
        print(
            f"{args.notes} jobs per run, {args.rounds} rounds; worker class rq.worker.Worker "
            f"(fork per job); tracing off; PostgreSQL {'via PgBouncer' if pooler else 'direct'}; "
            f"cpus {os.cpu_count()}, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="bench-throughput-") as logs:
            log_dir = Path(logs)
            for rnd in range(args.rounds):
                for workers in counts:
                    plan: list[tuple[str, int]] = [("bare", BARE_ARG_BYTES)]
                    plan += [(kind, size) for size in sizes for kind in kinds]
                    if rnd % 2:
                        plan.reverse()
                    for kind, size in plan:
                        where = log_dir / f"r{rnd}-{kind}{size}-{workers}"
                        if kind == "bare":
                            run = bare_rq(base, workers, args.notes, where, rnd)
                        else:
                            settings = minimal if kind == "minimal" else base
                            run = notepipe_run(
                                settings, workers, args.notes, where, kind=kind, size=size, rnd=rnd
                            )
                        runs.append(run)
                        print(
                            f"  round {rnd} {run.kind:<8} {run.size:>6} B {workers}w: "
                            f"wall {run.wall:7.1f}/s ({run.wall_s:5.1f}s)  "
                            f"steady {run.steady:7.1f}/s  CPU {run.cpu_ms:5.1f} ms/job  "
                            f"load {run.load:.2f}",
                            flush=True,
                        )
    finally:
        if pooler is not None:
            pooler.stop()
        postgres.stop()
        redis_service.stop()
    _table(runs)
    print(
        f"total {time.monotonic() - started:.0f}s; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def _table(runs: list[Run]) -> None:
    bare = {(r.round, r.workers): r for r in runs if r.kind == "bare"}
    print(
        f"\n{'workers':>7} {'stages':<8} {'size':>6} {'wall/s':>8} {'steady/s':>9}"
        f"  {'ratio wall':>10} {'ratio steady':>12} {'CPU ms/job':>10} {'ratio CPU':>9}"
        "  (medians over rounds)"
    )
    keys = sorted(
        {(r.workers, r.kind, r.size) for r in runs},
        key=lambda k: (k[0], k[1] != "bare", k[1], k[2]),
    )
    for workers, kind, size in keys:
        group = [r for r in runs if (r.workers, r.kind, r.size) == (workers, kind, size)]
        wall = statistics.median(r.wall for r in group)
        steady = statistics.median(r.steady for r in group)
        cpu = statistics.median(r.cpu_ms for r in group)
        ratio_cpu = ""
        if kind == "bare":
            ratio_wall = ratio_steady = ""
        else:
            refs = [(r, bare.get((r.round, r.workers))) for r in group]
            pairs = [(r, ref) for r, ref in refs if ref is not None]
            ratio_wall = f"{statistics.median(r.wall / ref.wall for r, ref in pairs):.2f}x"
            ratio_steady = f"{statistics.median(r.steady / ref.steady for r, ref in pairs):.2f}x"
            # bare CPU / notepipe CPU per job: the throughput ratio a CPU-bound machine gets
            ratio_cpu = f"{statistics.median(ref.cpu_ms / r.cpu_ms for r, ref in pairs):.2f}x"
        label = "bare RQ" if kind == "bare" else kind
        print(
            f"{workers:>7} {label:<8} {size:>6} {wall:>8.1f} {steady:>9.1f}"
            f"  {ratio_wall:>10} {ratio_steady:>12} {cpu:>10.1f} {ratio_cpu:>9}"
        )
    print(
        "(ratio = notepipe / bare RQ no-op of the same round, worker class and count; goal >= "
        "0.8x; ratio CPU = bare CPU per job / notepipe CPU per job, workers with their horses "
        "+ Redis, PostgreSQL, PgBouncer)"
    )


if __name__ == "__main__":
    main()
