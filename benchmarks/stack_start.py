"""Benchmark: how long ``notepipe-harness stack up`` takes until its env file is written.

Run: ``.venv/bin/python benchmarks/stack_start.py [--runs 5] [--workers 2]``.
Prints figures; asserts nothing. Each run starts ``notepipe-harness stack up`` as a
subprocess (local Redis + PostgreSQL, migrations, API, workers, reconciler),
times spawn -> env file written (the stack is ready: API healthy, workers
registered), then stops it with SIGTERM and times the shutdown.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.wait import wait_until


def one_start(workers: int, base: Path) -> tuple[float, float]:
    env_file, state = base / "env", base / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEPIPE_", "OTEL_"))}
    with open(base / "stack.log", "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.cli",
                "stack",
                "up",
                "--workers",
                str(workers),
                "--env-file",
                str(env_file),
                "--state-dir",
                str(state),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError((base / "stack.log").read_text()[-2000:])
            return env_file.exists()

        wait_until(ready, 120, describe="the stack's env file", interval=0.01, max_interval=0.02)
        up = time.monotonic() - started
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        return up, time.monotonic() - stopping
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ups, downs = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
            up, down = one_start(args.workers, Path(tmp))
        ups.append(up)
        downs.append(down)
        print(f"run {run + 1}: ready in {up:.2f}s, stopped in {down:.2f}s", flush=True)
    print(
        f"\nstack up (local, {args.workers} workers): median {statistics.median(ups):.2f}s "
        f"(min {min(ups):.2f}, max {max(ups):.2f}); "
        f"stop median {statistics.median(downs):.2f}s over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
