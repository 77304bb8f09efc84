"""Benchmark: what one job costs a worker and its forked work-horse, tracing off and on.

Run: ``.venv/bin/python benchmarks/horse_cost.py [--notes 300] [--rounds 2]
[--modes off,on] [--size 1024] [--stages default|minimal]``. Prints figures; asserts nothing.

A sampling profiler sees little of a fork-per-job worker: a horse lives ~30 ms and
``py-spy --subprocesses`` attaches to few of them. This benchmark reads the kernel's
accounting instead. One ``notepipe worker --burst`` (``--stages``, PostgreSQL through
PgBouncer, as in a stack) drains ``--notes`` notes stored and enqueued the way the API
does, each with a sampled ``traceparent``; mode ``off`` runs it with
``OTEL_SDK_DISABLED=true``, mode ``on`` exporting over OTLP to a harness collector.
From ``/proc/<worker>/stat`` while it runs, per job:

* ``worker CPU`` and ``worker faults``: the worker parent's own user + system CPU and
  minor page faults (the fork itself, RQ's bookkeeping). After every
  fork the parent's pages are shared with the child again, so whatever the parent
  writes next costs a copy-on-write fault.
* ``horse CPU`` and ``horse faults``: the same for its reaped horses (``cutime``,
  ``cstime``, ``cminflt``): the job, and every page of the parent it writes to.
* ``span relay``: the CPU of the worker's span relay process (tracing on), read from its
  own ``/proc/<pid>/stat``: a live child is in no ``cutime`` of the worker's until it is
  reaped at the worker's exit.

Modes alternate round by round; the 1-minute load average is printed with each run
(run it alone: on 2 cores a busy neighbour moves the CPU figures, the fault counts much
less).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _proc_cpu import process_table

BENCH_DIR = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cost:
    mode: str
    wall_s: float
    worker_cpu_ms: float
    horse_cpu_ms: float
    worker_faults: float
    horse_faults: float
    relay_cpu_ms: float
    spans: int
    load: float


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _relay_of(worker: int) -> int | None:
    """The worker's span relay process (a child named ``notepipe-relay``), if any."""
    for pid, (ppid, _) in process_table().items():
        if ppid == worker:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "notepipe-relay":
                    return pid
            except OSError:
                continue
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="off,on", help="comma-separated: off, on")
    parser.add_argument("--size", type=int, default=1024, help="note size in bytes")
    parser.add_argument("--stages", choices=["default", "minimal"], default="default")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"off", "on"}:
        parser.error(f"--modes takes off and/or on, got {args.modes!r}")
    for key in [k for k in os.environ if k.startswith(("OTEL_", "NOTEPIPE_"))]:
        del os.environ[key]
    sys.path.insert(0, str(BENCH_DIR))

    import redis
    from throughput import MINIMAL_STAGES, _wipe, sized_body, store_and_enqueue

    from harness import reaper
    from harness.collector import TraceCollector
    from harness.processes import start_worker
    from harness.services.local_pgbouncer import LocalPgBouncer
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.queue.enqueue import RQNoteQueue
    from notepipe.settings import load_settings
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    reaper.install()
    redis_service, postgres = LocalRedis(), LocalPostgres()
    pooler, collector = LocalPgBouncer(postgres), TraceCollector()
    costs: list[Cost] = []
    try:
        redis_service.start()
        postgres.start()
        with connect(load_settings(database_url=postgres.url)) as conn:
            migrate(conn)
        pooler.start()
        collector.start()
        stages = {"stages": MINIMAL_STAGES.split(",")} if args.stages == "minimal" else {}
        settings = load_settings(redis_url=redis_service.url, database_url=pooler.url, **stages)
        print(
            f"{args.notes} notes of {args.size} B per run, {args.stages} stages, 1 worker "
            f"(rq.worker.Worker), PostgreSQL via PgBouncer; cpus {os.cpu_count()}, "
            f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        for rnd in range(args.rounds):
            for mode in modes if rnd % 2 == 0 else reversed(modes):
                _wipe(settings)
                client = redis.Redis.from_url(settings.redis_dsn)
                queue, rng = RQNoteQueue(settings, client), random.Random(rnd)
                with connect(settings) as conn:
                    for _ in range(args.notes):
                        parent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"
                        store_and_enqueue(
                            conn, queue, sized_body(rng, args.size), {"traceparent": parent}
                        )
                client.close()
                env = (
                    {"OTEL_SDK_DISABLED": "true"}
                    if mode == "off"
                    else {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
                )
                spans_before = collector.stats.spans
                with tempfile.TemporaryDirectory(prefix="bench-horse-") as logs:
                    started = time.monotonic()
                    worker = start_worker(settings, Path(logs), burst=True, extra_env=env)
                    last: list[str] | None = None
                    relay: int | None = None
                    relay_last: list[str] | None = None
                    while worker.alive():
                        last = _stat(worker.pid) or last
                        if relay is None and mode == "on":
                            relay = _relay_of(worker.pid)
                        if relay is not None:
                            relay_last = _stat(relay) or relay_last
                        time.sleep(0.02)
                    wall = time.monotonic() - started
                    worker.kill()
                if last is None:
                    raise RuntimeError(f"the {mode} worker exited before it could be measured")
                n = args.notes
                utime, stime, cutime, cstime = (int(f) / _TICKS for f in last[11:15])
                # The relay, a live child, is not in the worker's cutime until it is reaped
                # at the worker's exit, after the last reading: counted apart.
                relay_cpu = sum(int(f) for f in relay_last[11:13]) / _TICKS if relay_last else 0.0
                cost = Cost(
                    mode,
                    wall,
                    1000 * (utime + stime) / n,
                    1000 * (cutime + cstime) / n,
                    int(last[7]) / n,
                    int(last[8]) / n,
                    1000 * relay_cpu / n,
                    collector.stats.spans - spans_before,
                    os.getloadavg()[0],
                )
                costs.append(cost)
                print(
                    f"  round {rnd} tracing {mode:<3}: {n / wall:5.1f} jobs/s; per job: worker "
                    f"{cost.worker_cpu_ms:5.1f} ms CPU {cost.worker_faults:5.0f} faults, horse "
                    f"{cost.horse_cpu_ms:5.1f} ms CPU {cost.horse_faults:5.0f} faults, relay "
                    f"{cost.relay_cpu_ms:4.2f} ms CPU; spans {cost.spans}; load {cost.load:.2f}",
                    flush=True,
                )
    finally:
        collector.stop()
        pooler.stop()
        postgres.stop()
        redis_service.stop()
    print("\nmedians per job:")
    for mode in modes:
        group = [c for c in costs if c.mode == mode]
        print(
            f"  tracing {mode:<3}: worker {statistics.median(c.worker_cpu_ms for c in group):5.1f} "
            f"ms CPU {statistics.median(c.worker_faults for c in group):5.0f} faults; horse "
            f"{statistics.median(c.horse_cpu_ms for c in group):5.1f} ms CPU "
            f"{statistics.median(c.horse_faults for c in group):5.0f} faults; span relay "
            f"{statistics.median(c.relay_cpu_ms for c in group):4.2f} ms CPU"
        )
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
