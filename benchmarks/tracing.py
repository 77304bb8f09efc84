"""Benchmark: pipeline throughput with tracing on vs off, in the same run.

Run: ``.venv/bin/python benchmarks/tracing.py [--notes 200] [--rounds 3] [--workers 2]``.
Prints figures; asserts nothing. Goal: tracing costs the stack at most 5 % CPU
per note.

Two local stacks run side by side: "off" with ``OTEL_SDK_DISABLED=true``, "on"
exporting every span over OTLP/HTTP to a ``harness.collector.TraceCollector``.
Rounds alternate (off/on, then on/off, ...), each posting a burst of notes as
fast as 16 client threads can and waiting until all are terminal; throughput is
``notes / (last completed_at - first created_at)`` from the ledger (API, queue
and workers all included). The figure is the median over rounds, per mode; next
to it the median of the per-round on/off ratios (the two bursts of a round run
back to back, so they share the machine's load).

CPU per note is read from ``/proc`` for every process of each stack and all its
descendants, live or reaped, by role: the API, the workers with their work-horses, the
reconciler, Redis, PgBouncer, PostgreSQL with its backends (behind PgBouncer they live
long, so a postmaster's reaped-children time alone would miss them). This process (the
posting client, and the collector decoding spans) is shown apart: it is the harness's
cost, not the pipeline's. Run it alone: on 2 cores a busy neighbour moves the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _proc_cpu import process_table, tree_cpu

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


def _role(argv: Sequence[str]) -> str:
    """What a process of the stack is, from the command line it was started with."""
    words = [Path(a).name for a in argv]
    for role in ("api", "worker", "reconcile", "redis-server", "postgres", "pgbouncer"):
        if role in words:
            return {"redis-server": "redis", "reconcile": "reconciler"}.get(role, role)
    return " ".join(words[:3])


def _argv(args: object) -> list[str]:
    return [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]


def cpu_by_role(roots: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of each role's processes with all their descendants."""
    table = process_table()
    totals: dict[str, float] = {}
    for root, role in roots.items():
        totals[role] = totals.get(role, 0.0) + tree_cpu([root], table)
    return totals


def own_cpu() -> float:
    """This process's CPU: the posting client, and the collector decoding spans."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # the stacks get exactly the OTEL_* below
    print(f"cpus {os.cpu_count()}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    ratios: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-tracing-") as logs,
        TraceCollector() as collector,
    ):
        on_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        off_env = {"OTEL_SDK_DISABLED": "true"}
        with local_stack(Path(logs) / "off", workers=args.workers, env=off_env) as off:
            off_procs = {p.pid: p for p in reaper.registered()}
            with local_stack(Path(logs) / "on", workers=args.workers, env=on_env) as on:
                on_procs = {p.pid: p for p in reaper.registered() if p.pid not in off_procs}
                stacks: dict[str, tuple[str, Settings, dict[int, str]]] = {}
                for name, stack, procs in (("off", off, off_procs), ("on", on, on_procs)):
                    assert stack.api is not None and stack.settings is not None
                    roots = {pid: _role(_argv(proc.args)) for pid, proc in procs.items()}
                    stacks[name] = (str(stack.api.url), stack.settings, roots)
                _rounds(args, stacks, results, cpu, ratios)
        spans = collector.stats.spans
    _report(results, cpu, ratios, spans)


def _report(
    results: dict[str, list[float]],
    cpu: dict[str, list[dict[str, float]]],
    ratios: list[float],
    spans: int,
) -> None:
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(
        f"\ntracing off: median {off:.1f} notes/s  {' '.join(f'{r:.1f}' for r in results['off'])}"
    )
    print(f"tracing on : median {on:.1f} notes/s  {' '.join(f'{r:.1f}' for r in results['on'])}")
    print(f"on/off throughput ratio {on / off:.3f} -> loss {(1 - on / off) * 100:+.1f} %")
    print(
        f"median of per-round on/off ratios {statistics.median(ratios):.3f} "
        f"({' '.join(f'{r:.3f}' for r in ratios)})"
    )

    def median_ms(mode: str, roles: list[str]) -> float:
        return 1000 * statistics.median(sum(r.get(k, 0.0) for k in roles) for r in cpu[mode])

    roles = sorted({k for rounds in cpu.values() for r in rounds for k in r} - {"client"})
    print("CPU per note, median over rounds (ms):")
    for role in roles:
        a, b = median_ms("off", [role]), median_ms("on", [role])
        print(f"  {role:<22} off {a:6.2f}  on {b:6.2f}  ({b - a:+.2f})")
    a, b = median_ms("off", roles), median_ms("on", roles)
    print(
        f"  {'the stack (all above)':<22} off {a:6.2f}  on {b:6.2f}  ({b - a:+.2f}) "
        f"-> tracing costs {(b / a - 1) * 100:+.1f} % CPU per note (goal <= 5 %)"
    )
    a, b = median_ms("off", ["client"]), median_ms("on", ["client"])
    print(f"  {'client + collector':<22} off {a:6.2f}  on {b:6.2f}  (not the pipeline's cost)")
    print(f"spans received by the collector: {spans}")
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _rounds(
    args: argparse.Namespace,
    stacks: dict[str, tuple[str, Settings, dict[int, str]]],
    results: dict[str, list[float]],
    cpu: dict[str, list[dict[str, float]]],
    ratios: list[float],
) -> None:
    for url, settings, _ in stacks.values():
        burst(url, settings, 20, seed=-1)  # warm both (imports, connections)
    for round_ in range(args.rounds):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")
        rates: dict[str, float] = {}
        for mode in order:
            url, settings, roots = stacks[mode]
            started, before, own_before = time.monotonic(), cpu_by_role(roots), own_cpu()
            rate = burst(url, settings, args.notes, seed=round_)
            after = cpu_by_role(roots)
            per_note = {k: (after[k] - before.get(k, 0.0)) / args.notes for k in after}
            per_note["client"] = (own_cpu() - own_before) / args.notes
            cpu[mode].append(per_note)
            results[mode].append(rate)
            rates[mode] = rate
            stack_ms = 1000 * sum(v for k, v in per_note.items() if k != "client")
            print(
                f"round {round_ + 1} tracing {mode:>3}: {rate:6.1f} notes/s "
                f"({time.monotonic() - started:.1f}s wall, {stack_ms:.1f} ms stack CPU/note)",
                flush=True,
            )
        ratios.append(rates["on"] / rates["off"])


if __name__ == "__main__":
    main()
