"""A bare ``rq worker``: RQ's default ``Worker`` (fork per job), the JSON serializer, no
notepipe code and no tracing; the benchmarks' baseline beside notepipe's workers.

The leading underscore marks a helper module, not a benchmark to run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness import reaper
from harness.processes import PipelineProcess

BENCH_DIR = Path(__file__).resolve().parent


def rq_name(name: str) -> str:
    """The RQ worker name :func:`spawn_bare_worker` registers for ``name``."""
    return f"{name}.{os.getpid()}"


def spawn_bare_worker(
    name: str, redis_url: str, queue: str, log_dir: Path, *, burst: bool = False
) -> PipelineProcess:
    """Start ``rq worker`` on ``queue`` (jobs importable from this folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEPIPE_", "OTEL_"))}
    env["PYTHONUNBUFFERED"] = "1"
    log_path = log_dir / f"{name}.log"
    cmd = [
        str(Path(sys.executable).parent / "rq"),
        "worker",
        *(["--burst"] if burst else []),
        "--with-scheduler",
        *("--url", redis_url),
        *("--serializer", "rq.serializers.JSONSerializer"),
        *("--worker-class", "rq.worker.Worker"),
        *("--path", str(BENCH_DIR)),
        *("--name", rq_name(name)),
        queue,
    ]
    proc = reaper.spawn(cmd, env=env, cwd=BENCH_DIR, log_path=log_path)
    return PipelineProcess("worker", name, proc, log_path)
