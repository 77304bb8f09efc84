"""Benchmark: pipeline throughput with tracing on vs off, in the same run.

Run: ``.venv/bin/python benchmarks/tracing.py [--notes 200] [--rounds 3] [--workers 2]``.
Prints figures; asserts nothing. Goal: tracing costs at most 5 % of throughput.

Two local stacks run side by side: "off" with ``OTEL_SDK_DISABLED=true``, "on"
exporting every span over OTLP/HTTP to a ``harness.collector.TraceCollector``.
Rounds alternate (off/on, then on/off, ...), each posting a burst of notes as
fast as 16 client threads can and waiting until all are terminal; throughput is
``notes / (last completed_at - first created_at)`` from the ledger (API, queue
and workers all included). The figure is the median over rounds, per mode; next
to it the median of the per-round on/off ratios (the two bursts of a round run
back to back, so they share the machine's load), and the CPU time per note:
every process of the stack (API, workers with their reaped work-horses,
reconciler, Redis, PostgreSQL with its backends) plus this process (the posting
client, and the collector decoding spans), from ``/proc`` and ``getrusage``.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness import reaper
from harness.collector import TraceCollector
from harness.commands.stack import local_stack
from harness.load import note_body
from harness.wait import wait_until
from notepipe.settings import Settings
from notepipe.store.db import connect


def burst(api_url: str, settings: Settings, notes: int, seed: int) -> float:
    """Post ``notes`` notes, wait for all to be terminal; return notes/s from the ledger."""
    rng = random.Random(seed)
    bodies = [note_body(rng) for _ in range(notes)]
    with httpx.Client(base_url=api_url, timeout=30) as client, ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda b: int(client.post("/notes", json=b).json()["id"]), bodies))
    sql = """SELECT count(*) FILTER (WHERE completed_at IS NOT NULL) AS done,
                    extract(epoch FROM max(completed_at) - min(created_at)) AS span
             FROM notes WHERE id >= %s AND id <= %s"""
    with connect(settings) as conn:

        def all_done() -> float | None:
            row = conn.execute(sql, (min(ids), max(ids))).fetchone()
            return float(row["span"]) if row and row["done"] == notes else None

        span = wait_until(all_done, 300, describe=f"{notes} notes to be terminal", interval=0.2)
    return notes / span


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int], *, own: bool = True) -> float:
    """User + system CPU of ``pids`` and their reaped children, plus this process's."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(f) for f in fields[11:15]) / _TICKS  # utime stime cutime cstime
    if not own:
        return total
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return total + usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # the stacks get exactly the OTEL_* below
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    stack_cpu: dict[str, list[float]] = {"off": [], "on": []}
    ratios: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-tracing-") as logs,
        TraceCollector() as collector,
    ):
        on_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        off_env = {"OTEL_SDK_DISABLED": "true"}
        with local_stack(Path(logs) / "off", workers=args.workers, env=off_env) as off:
            off_pids = [p.pid for p in reaper.registered()]
            with local_stack(Path(logs) / "on", workers=args.workers, env=on_env) as on:
                on_pids = [p.pid for p in reaper.registered() if p.pid not in off_pids]
                stacks = {
                    name: (str(s.api.url if s.api else ""), s.settings, pids)
                    for name, s, pids in (("off", off, off_pids), ("on", on, on_pids))
                }
                _rounds(args, stacks, results, cpu, stack_cpu, ratios)
        spans = collector.stats.spans
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    loss = (1 - on / off) * 100
    print(
        f"\ntracing off: median {off:.1f} notes/s  {' '.join(f'{r:.1f}' for r in results['off'])}"
    )
    print(f"tracing on : median {on:.1f} notes/s  {' '.join(f'{r:.1f}' for r in results['on'])}")
    print(f"on/off throughput ratio {on / off:.3f} -> loss {loss:+.1f} % (goal <= 5 %)")
    print(
        f"median of per-round on/off ratios {statistics.median(ratios):.3f} "
        f"({' '.join(f'{r:.3f}' for r in ratios)})"
    )
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    print(
        f"CPU per note (stack + client/collector): off {cpu_off * 1000:.1f} ms, "
        f"on {cpu_on * 1000:.1f} ms -> tracing costs {(cpu_on / cpu_off - 1) * 100:+.1f} % CPU"
    )
    alone_off, alone_on = statistics.median(stack_cpu["off"]), statistics.median(stack_cpu["on"])
    print(
        f"CPU per note, the stack alone (API, workers + horses, reconciler, Redis, PostgreSQL; "
        f"no client, no collector): off {alone_off * 1000:.1f} ms, on {alone_on * 1000:.1f} ms "
        f"-> {(alone_on / alone_off - 1) * 100:+.1f} % (goal <= 5 %)"
    )
    print(f"spans received by the collector: {spans}")


def _rounds(
    args: argparse.Namespace,
    stacks: dict[str, tuple[str, Settings, list[int]]],
    results: dict[str, list[float]],
    cpu: dict[str, list[float]],
    stack_cpu: dict[str, list[float]],
    ratios: list[float],
) -> None:
    for url, settings, _ in stacks.values():
        burst(url, settings, 20, seed=-1)  # warm both (imports, connections)
    for round_ in range(args.rounds):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        rates: dict[str, float] = {}
        for mode in order:
            url, settings, pids = stacks[mode]
            started, cpu_before = time.monotonic(), cpu_seconds(pids)
            alone_before = cpu_seconds(pids, own=False)
            rate = burst(url, settings, args.notes, seed=round_)
            cpu[mode].append((cpu_seconds(pids) - cpu_before) / args.notes)
            stack_cpu[mode].append((cpu_seconds(pids, own=False) - alone_before) / args.notes)
            results[mode].append(rate)
            rates[mode] = rate
            print(
                f"round {round_ + 1} tracing {mode:>3}: {rate:6.1f} notes/s "
                f"({time.monotonic() - started:.1f}s wall, "
                f"{cpu[mode][-1] * 1000:.1f} ms CPU/note)",
                flush=True,
            )
        ratios.append(rates["on"] / rates["off"])


if __name__ == "__main__":
    main()
