"""Benchmark: what tracing costs the pipeline, CPU per note with tracing on vs off.

Run: ``.venv/bin/python benchmarks/tracing.py [--notes 300] [--rounds 6] [--workers 2]
[--schedule together|alternate] [--control]``. Prints figures; asserts nothing. Goal:
tracing costs the stack at most 5 % CPU per note.

Two local stacks run side by side: "off" with ``OTEL_SDK_DISABLED=true``, "on"
exporting every span over OTLP/HTTP to a ``harness.collector.TraceCollector``. Each
round posts a burst of ``--notes`` notes to each (16 client threads per stack) and waits
until all are terminal. Half the rounds run on a pair of stacks started off-then-on, the
other half on a fresh pair started on-then-off: the order of start alone made a stack
0.6-1.7 % cheaper per note in A/A runs. ``--control`` is that A/A run: tracing off in
both stacks, so the figure printed is the benchmark's own bias and spread.

``--schedule together`` (the default) runs the two bursts of a round at the same time:
whatever else the machine does in that round (a neighbour, the host's other guests,
frequency changes) falls on both alike, so the per-round on/off ratio of CPU per note is
paired. On 2 cores, bursts run one after the other drifted by +-10 % from round to
round, twice the effect to be shown. Throughput is then the notes each stack completed
while both bursts ran, over that shared window (the stack that finishes first leaves the
other the whole machine). ``--schedule alternate`` runs the bursts one after the other
(off/on, then on/off, ...); throughput is ``notes / (last completed_at - first
created_at)`` from the ledger.

CPU per note is read from ``/proc`` for every process of each stack and all its
descendants, live or reaped, by role: the API, the workers (apart: the parents, their
work-horses, their span relay processes), the reconciler, Redis, PgBouncer, PostgreSQL with its backends (behind PgBouncer they live
long, so a postmaster's reaped-children time alone would miss them). The headline is the
median over rounds of each round's on/off ratio of the stack's CPU per note; the ratio of
the per-mode medians is printed beside it. This process (the posting clients, and the
collector decoding spans) is shown apart: it is the harness's cost, not the pipeline's.
Run it alone: on 2 cores a busy neighbour moves the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from _proc_cpu import own_cpu as process_own_cpu
from _proc_cpu import process_table, tree_cpu

from harness import reaper
from harness.collector import TraceCollector
from harness.commands.stack import local_stack
from harness.load import note_body
from harness.wait import wait_until
from notepipe.settings import Settings
from notepipe.store.db import connect


@dataclass(frozen=True)
class Burst:
    """The notes of one burst (ids ``first``..``last``) and, by the ledger's clock, when
    the first was created and the last completed (epoch seconds)."""

    first: int
    last: int
    created: float
    completed: float

    @property
    def rate(self) -> float:
        """Notes per second from the first note created to the last completed."""
        return (self.last - self.first + 1) / (self.completed - self.created)


_WINDOW_SQL = """SELECT count(*) FILTER (WHERE completed_at IS NOT NULL) AS done,
                        extract(epoch FROM min(created_at)) AS created,
                        extract(epoch FROM max(completed_at)) AS completed
                 FROM notes WHERE id >= %s AND id <= %s"""


def burst(api_url: str, settings: Settings, notes: int, seed: int) -> Burst:
    """Post ``notes`` notes, wait until all are terminal."""
    rng = random.Random(seed)
    bodies = [note_body(rng) for _ in range(notes)]
    with httpx.Client(base_url=api_url, timeout=30) as client, ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda b: int(client.post("/notes", json=b).json()["id"]), bodies))
    if len(set(ids)) != notes or max(ids) - min(ids) + 1 != notes:
        raise RuntimeError(f"the burst's notes are not one id range: {min(ids)}..{max(ids)}")
    with connect(settings) as conn:

        def all_done() -> Burst | None:
            row = conn.execute(_WINDOW_SQL, (min(ids), max(ids))).fetchone()
            if row is None or row["done"] != notes:
                return None
            return Burst(min(ids), max(ids), float(row["created"]), float(row["completed"]))

        return wait_until(all_done, 300, describe=f"{notes} notes to be terminal", interval=0.2)


def completed_between(settings: Settings, notes: Burst, start: float, end: float) -> int:
    """How many of the burst's notes completed in ``[start, end]`` (ledger clock)."""
    sql = """SELECT count(*) AS n FROM notes WHERE id >= %s AND id <= %s
             AND completed_at >= to_timestamp(%s) AND completed_at <= to_timestamp(%s)"""
    with connect(settings) as conn:
        row = conn.execute(sql, (notes.first, notes.last, start, end)).fetchone()
    return int(row["n"]) if row is not None else 0


Stacks = dict[str, tuple[str, Settings, dict[int, str]]]


def _role(argv: Sequence[str]) -> str:
    """What a process of the stack is, from the command line it was started with."""
    words = [Path(a).name for a in argv]
    for role in ("api", "worker", "reconcile", "redis-server", "postgres", "pgbouncer"):
        if role in words:
            return {"redis-server": "redis", "reconcile": "reconciler"}.get(role, role)
    return " ".join(words[:3])


def _argv(args: object) -> list[str]:
    return [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]


def _relays_of(worker: int, table: dict[int, tuple[int, float]]) -> list[int]:
    """The worker's span relay process (named ``notepipe-relay``), if it has one."""
    found = []
    for pid, (ppid, _) in table.items():
        if ppid == worker:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "notepipe-relay":
                    found.append(pid)
    return found


def cpu_by_role(roots: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of each role's processes with all their descendants; a worker's
    own, its span relay's and its horses' apart."""
    table = process_table()
    totals: dict[str, float] = {}

    def add(key: str, seconds: float) -> None:
        totals[key] = totals.get(key, 0.0) + seconds

    for root, role in roots.items():
        total = tree_cpu([root], table)
        if role != "worker":
            add(role, total)
            continue
        own, relay = process_own_cpu(root), tree_cpu(_relays_of(root, table), table)
        add("worker (parent)", own)
        add("worker (span relay)", relay)
        add("worker (horses)", total - own - relay)
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
    parser.add_argument(
        "--schedule",
        choices=("together", "alternate"),
        default="together",
        help="run a round's two bursts at the same time (paired) or one after the other",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="an A/A run: tracing off in both stacks (what the benchmark shows with no effect)",
    )
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]  # the stacks get exactly the OTEL_* below
    print(f"schedule {args.schedule}, {args.rounds} rounds of {args.notes} notes per stack")
    if args.control:
        print("CONTROL: tracing is off in both stacks; 'on' is a second 'off' stack")
    print(f"cpus {os.cpu_count()}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    ratios: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-tracing-") as logs,
        TraceCollector() as collector,
    ):
        off_env = {"OTEL_SDK_DISABLED": "true"}
        on_env = off_env if args.control else {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}
        envs = {"off": off_env, "on": on_env}
        # Two sessions of fresh stacks, started in opposite orders: whatever the order of
        # start does to a stack (in A/A runs the second was 0.6-1.7 % cheaper) cancels.
        halves = (args.rounds - args.rounds // 2, args.rounds // 2)
        done = 0
        orders = (("off", "on"), ("on", "off"))
        for session, (order, count) in enumerate(zip(orders, halves, strict=True)):
            if count == 0:
                continue
            print(f"session {session + 1}: the {order[0]} stack started first", flush=True)
            with _two_stacks(Path(logs) / f"session-{session + 1}", order, envs, args) as stacks:
                _rounds(args, stacks, range(done, done + count), results, cpu, ratios)
            done += count
        spans = collector.stats.spans
    _report(results, cpu, ratios, spans)


@contextlib.contextmanager
def _two_stacks(
    logs: Path, order: Sequence[str], envs: dict[str, dict[str, str]], args: argparse.Namespace
) -> Iterator[Stacks]:
    """Both stacks, started one after the other in ``order``: mode -> (API URL, settings,
    the stack's processes by role)."""
    stacks: Stacks = {}
    with contextlib.ExitStack() as exit_stack:
        for mode in order:
            known = {p.pid for p in reaper.registered()}
            stack = exit_stack.enter_context(
                local_stack(logs / mode, workers=args.workers, env=envs[mode])
            )
            assert stack.api is not None and stack.settings is not None
            roots = {p.pid: _role(_argv(p.args)) for p in reaper.registered() if p.pid not in known}
            stacks[mode] = (str(stack.api.url), stack.settings, roots)
        yield stacks


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
    rate_ratios = [b / a for a, b in zip(results["off"], results["on"], strict=True)]
    print(
        f"throughput on/off: median of per-round ratios {statistics.median(rate_ratios):.3f} "
        f"({' '.join(f'{r:.3f}' for r in rate_ratios)}); ratio of medians {on / off:.3f}"
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
        f"-> ratio of medians {(b / a - 1) * 100:+.1f} %"
    )
    a, b = median_ms("off", ["client"]), median_ms("on", ["client"])
    print(f"  {'client + collector':<22} {(a + b) / 2:6.2f} per note posted (not the pipeline's)")
    paired = statistics.median(ratios)
    print(
        f"stack CPU per note on/off, per round: {' '.join(f'{r:.3f}' for r in ratios)}\n"
        f"tracing costs {(paired - 1) * 100:+.1f} % CPU per note "
        f"(median of the per-round ratios; goal <= 5 %)"
    )
    print(f"spans received by the collector: {spans}")
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _measured_burst(
    stacks: Stacks, mode: str, notes: int, seed: int
) -> tuple[Burst, dict[str, float], float]:
    """One burst on ``mode``'s stack: the notes, the stack's CPU per note by role, wall s."""
    url, settings, roots = stacks[mode]
    started, before = time.monotonic(), cpu_by_role(roots)
    done = burst(url, settings, notes, seed=seed)
    after = cpu_by_role(roots)
    per_note = {k: (after[k] - before.get(k, 0.0)) / notes for k in after}
    return done, per_note, time.monotonic() - started


def _rounds(
    args: argparse.Namespace,
    stacks: Stacks,
    numbers: range,
    results: dict[str, list[float]],
    cpu: dict[str, list[dict[str, float]]],
    ratios: list[float],
) -> None:
    for url, settings, _ in stacks.values():
        burst(url, settings, 20, seed=-1)  # warm both (imports, connections)
    for round_ in numbers:
        own_before = own_cpu()
        measured: dict[str, tuple[Burst, dict[str, float], float]] = {}
        if args.schedule == "together":
            with ThreadPoolExecutor(2) as pool:
                futures = {
                    mode: pool.submit(_measured_burst, stacks, mode, args.notes, round_)
                    for mode in ("off", "on")
                }
                measured = {mode: future.result() for mode, future in futures.items()}
            start = max(done.created for done, _, _ in measured.values())
            end = min(done.completed for done, _, _ in measured.values())
            rates = {
                mode: completed_between(stacks[mode][1], done, start, end) / (end - start)
                for mode, (done, _, _) in measured.items()
            }
        else:
            for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                measured[mode] = _measured_burst(stacks, mode, args.notes, round_)
            rates = {mode: done.rate for mode, (done, _, _) in measured.items()}
        client = (own_cpu() - own_before) / args.notes / len(measured)
        stack_ms: dict[str, float] = {}
        for mode, (_, per_note, wall) in measured.items():
            stack_ms[mode] = 1000 * sum(per_note.values())
            cpu[mode].append(per_note | {"client": client})
            results[mode].append(rates[mode])
            print(
                f"round {round_ + 1} tracing {mode:>3}: {rates[mode]:6.1f} notes/s "
                f"({wall:.1f}s wall, {stack_ms[mode]:.1f} ms stack CPU/note)",
                flush=True,
            )
        ratios.append(stack_ms["on"] / stack_ms["off"])


if __name__ == "__main__":
    main()
