"""Profile one notepipe worker (and its forked horses) draining a burst of notes.

Run: ``.venv/bin/python benchmarks/profile_worker.py [--notes 400] [--size 1024]
[--stages default|minimal] [--out profile.txt]``. Needs ``py-spy`` (``pip install
py-spy``). Starts a local Redis and PostgreSQL, stores and enqueues ``--notes``
notes of ``--size`` bytes the way the API does, runs ``notepipe worker --burst``
under ``py-spy record --subprocesses`` (tracing off, or with ``--tracing`` exporting to a
harness collector; PostgreSQL through PgBouncer, as in a stack) and prints the top functions
by inclusive and by own time, summed over the worker and every horse.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
MINIMAL = "notepipe.stages.normalize:normalize,notepipe.stages.content_hash:content_hash"


def summarize(raw: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        # drop the process/thread header frame py-spy adds
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        if frames:
            own[frames[-1]] += n
    lines = [f"{total} samples"]
    lines.append("top inclusive:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("top own:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=400)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--stages", choices=["default", "minimal"], default="default")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="also write the summary here")
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="export spans over OTLP to a harness TraceCollector (as in a stack)",
    )
    parser.add_argument(
        "--raw", type=Path, default=None, help="also keep py-spy's raw stacks (flamegraph input)"
    )
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith(("OTEL_", "NOTEPIPE_"))]:
        del os.environ[key]
    os.environ["OTEL_SDK_DISABLED"] = "true"
    sys.path.insert(0, str(BENCH_DIR))

    import redis
    from throughput import sized_body, store_and_enqueue

    from harness import reaper
    from harness.collector import TraceCollector
    from harness.processes import process_env
    from harness.services.local_pgbouncer import LocalPgBouncer
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.queue.enqueue import RQNoteQueue
    from notepipe.settings import load_settings
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    reaper.install()
    redis_service, postgres = LocalRedis(), LocalPostgres()
    pooler = LocalPgBouncer(postgres)
    collector = TraceCollector()
    try:
        redis_service.start()
        postgres.start()
        with connect(load_settings(database_url=postgres.url)) as conn:
            migrate(conn)
        pooler.start()
        extra = {"stages": MINIMAL.split(",")} if args.stages == "minimal" else {}
        settings = load_settings(redis_url=redis_service.url, database_url=pooler.url, **extra)
        rng = random.Random(1)
        client = redis.Redis.from_url(settings.redis_dsn)
        queue = RQNoteQueue(settings, client)
        with connect(settings) as conn:
            for _ in range(args.notes):
                store_and_enqueue(conn, queue, sized_body(rng, args.size))
        with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
            raw = Path(tmp) / "raw.txt"
            otel = {"OTEL_SDK_DISABLED": "true"}
            if args.tracing:
                collector.start()
                otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
            env = process_env(settings, otel, service_name="w")
            notepipe_bin = str(Path(sys.executable).parent / "notepipe")
            cmd = [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--subprocesses",
                "--function",
                "--rate",
                "200",
                "--format",
                "raw",
                "-o",
                str(raw),
                "--",
                notepipe_bin,
                "worker",
                "--burst",
            ]
            started = time.monotonic()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            elapsed = time.monotonic() - started
            summary = summarize(raw, args.top)
            if args.raw:
                args.raw.write_text(raw.read_text())
        header = (
            f"{args.notes} notes of {args.size} B, {args.stages} stages, 1 worker via PgBouncer, "
            f"tracing {'on' if args.tracing else 'off'}, "
            f"{elapsed:.1f}s under py-spy; load {os.getloadavg()[0]:.2f}"
        )
        print(header)
        print(summary)
        if args.out:
            args.out.write_text(header + "\n" + summary + "\n")
    finally:
        collector.stop()
        pooler.stop()
        postgres.stop()
        redis_service.stop()


if __name__ == "__main__":
    main()
