"""Benchmark: how long ``notepipe-harness stack up`` takes until its env file is written.

Run: ``.venv/bin/python benchmarks/stack_start.py [--runs 5] [--workers 2]``.
Prints figures; asserts nothing. Each run starts ``notepipe-harness stack up`` as a
subprocess (local Redis + PostgreSQL, migrations, API, workers, reconciler),
times spawn -> env file written (the stack is ready: API healthy, workers
registered), then stops it with SIGTERM and times the shutdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.commands.stack_process import StackUpProcess


def one_start(workers: int, base: Path) -> tuple[float, float]:
    stack = StackUpProcess(base, workers=workers)
    started = time.monotonic()
    stack.start()
    try:
        stack.wait_ready(120, interval=0.01)
        up = time.monotonic() - started
        stopping = time.monotonic()
        stack.stop()
        return up, time.monotonic() - stopping
    finally:
        stack.stop(timeout=0.1)


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
