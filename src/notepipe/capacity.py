"""``notepipe capacity``: sweep worker counts and find each one's saturation point.

For every worker count a fresh local stack is started (Redis, PostgreSQL, API,
N workers, reconciler), then an **open** arrival rate is ramped geometrically
(``steps`` steps over ``--duration``, from 1 post/s up to ``--max-rate``): posts
leave on a fixed schedule whatever the response times. Per step:

* **throughput** ``λ``: notes that became terminal per second (ledger, ``/stats``);
* **backlog**: accepted notes not yet terminal (``/stats``), at the start and end;
* **W**: mean ``completed_at - created_at`` of the notes that became terminal in
  the step (read directly from PostgreSQL), and p95;
* **Little's law**: the mean backlog ``L`` against ``λ·W``. In a steady state
  they agree; once the system saturates the backlog grows and they part.

A step is *saturated* when throughput falls below 90 % of the offered rate and
the backlog grew by more than 10 % of the step's posts (at least 3). The sweep of a worker count stops after two saturated steps;
its capacity is the highest throughput reached (the plateau).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from notepipe.errors import ConfigurationError
from notepipe.settings import Settings, load_settings

STEPS = 10
SATURATION = 0.9
WORDS = [
    "note",
    "queue",
    "worker",
    "ledger",
    "retry",
    "lease",
    "meeting",
    "budget",
    "travel",
    "idea",
    "draft",
    "review",
]


@dataclass
class Step:
    workers: int
    offered: float
    seconds: float
    posted: int = 0
    post_errors: int = 0
    throughput: float = 0.0
    backlog_start: int = 0
    backlog_end: int = 0
    mean_backlog: float = 0.0
    w_mean: float = 0.0
    w_p95: float = 0.0
    queue_depth: int = 0
    send_lag_max: float = 0.0

    @property
    def little_ratio(self) -> float:
        """``L / (λ·W)``: ~1 in a steady state."""
        product = self.throughput * self.w_mean
        return self.mean_backlog / product if product > 0 else math.nan

    @property
    def saturated(self) -> bool:
        grew = self.backlog_end - self.backlog_start > max(3.0, 0.1 * self.offered * self.seconds)
        return self.throughput < SATURATION * self.offered and grew


@dataclass
class Sweep:
    workers: int
    steps: list[Step] = field(default_factory=list)

    @property
    def capacity(self) -> float:
        return max((s.throughput for s in self.steps), default=0.0)

    def _knee(self) -> int:
        """Index of the first step of the final run of saturated steps (len if none):
        a lone saturated step followed by healthy ones was noise, not the limit."""
        index = len(self.steps)
        while index > 0 and self.steps[index - 1].saturated:
            index -= 1
        return index

    @property
    def saturated_at(self) -> float | None:
        knee = self._knee()
        return self.steps[knee].offered if knee < len(self.steps) else None

    @property
    def last_healthy(self) -> Step | None:
        healthy = [s for s in self.steps[: self._knee()] if not s.saturated]
        return healthy[-1] if healthy else None


def parse_duration(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ConfigurationError(f"bad duration {text!r}: use e.g. 60s, 2m or 90") from None


def note_body(rng: random.Random) -> dict[str, Any]:
    """A note of a realistic size: mostly short, some paragraphs, a few long notes."""
    words = rng.choice([rng.randint(5, 40)] * 11 + [rng.randint(60, 250)] * 7 + [1000] * 2)
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    if rng.random() < 0.3:
        text += f" https://example.org/{rng.randrange(1000)} #capacity 2025-03-0{rng.randint(1, 9)}"
    return {"content": text, "metadata": {"source": "capacity"}}


@contextmanager
def local_stack(
    base: Settings, workers: int, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, Settings]]:
    """A fresh local stack with ``workers`` workers; yields (API URL, settings).

    ``extra_env`` goes to the pipeline processes (e.g. ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    from harness.processes import (
        PipelineProcess,
        start_api,
        start_reconciler,
        start_worker,
        wait_worker_registered,
    )
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    redis, postgres = LocalRedis(appendonly=True), LocalPostgres()
    processes: list[PipelineProcess] = []
    try:
        redis.start()
        postgres.start()
        settings = load_settings(
            **{**base.model_dump(), "redis_url": redis.url, "database_url": postgres.url}
        )
        with connect(settings) as conn:
            migrate(conn)
        api = start_api(settings, log_dir, extra_env=extra_env)
        processes.append(api)
        for index in range(workers):
            processes.append(start_worker(settings, log_dir, index=index, extra_env=extra_env))
        processes.append(start_reconciler(settings, log_dir, extra_env=extra_env))
        for process in processes:
            if process.role == "worker":
                wait_worker_registered(settings.redis_dsn, process)
        yield str(api.url), settings
    finally:
        for process in reversed(processes):
            process.stop(grace=5)
        postgres.stop()
        redis.stop()


def _backlog(client: httpx.Client) -> tuple[int, int, int]:
    """(terminal notes, accepted-not-terminal notes, RQ queue depth) from ``/stats``."""
    stats = client.get("/stats", timeout=10).json()
    notes: dict[str, int] = stats["notes"]
    terminal = notes.get("completed", 0) + notes.get("failed", 0)
    return terminal, sum(notes.values()) - terminal, int(stats["rq"]["queued"])


def _latency(settings: Settings, since: float, until: float) -> tuple[float, float]:
    from notepipe.store.db import connect

    sql = """
        SELECT avg(extract(epoch FROM completed_at - created_at)) AS mean,
               percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY extract(epoch FROM completed_at - created_at)) AS p95
        FROM notes
        WHERE completed_at >= to_timestamp(%s) AND completed_at < to_timestamp(%s)
    """
    with connect(settings) as conn:
        row = conn.execute(sql, (since, until)).fetchone()
    if not row or row["mean"] is None:
        return math.nan, math.nan
    return float(row["mean"]), float(row["p95"])


class OpenLoad:
    """Posts on a fixed schedule from a dispatcher thread into a thread pool (open model)."""

    def __init__(self, api_url: str, seed: int) -> None:
        self.client = httpx.Client(base_url=api_url, timeout=10)
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="capacity-post")
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.posted = 0
        self.errors = 0

    def _post(self, body: dict[str, Any]) -> None:
        try:
            ok = self.client.post("/notes", json=body).status_code in (201, 202)
        except httpx.HTTPError:
            ok = False
        with self.lock:
            self.posted += ok
            self.errors += not ok

    def run_step(self, rate: float, seconds: float) -> float:
        """Offer ``rate`` posts/s for ``seconds``; return the worst dispatch lag (s)."""
        start = time.monotonic()
        worst_lag = 0.0
        for k in range(int(rate * seconds)):
            due = start + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            worst_lag = max(worst_lag, -delay)
            self.pool.submit(self._post, note_body(self.rng))
        time.sleep(max(0.0, start + seconds - time.monotonic()))
        return worst_lag

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def sweep_one(
    base: Settings, workers: int, duration: float, max_rate: float, log_dir: Path, progress: Any
) -> Sweep:
    result = Sweep(workers)
    seconds = duration / STEPS
    factor = max_rate ** (1 / (STEPS - 1)) if max_rate > 1 else 1.0
    task = progress.add_task(f"{workers} worker(s): starting the stack", total=STEPS)
    with local_stack(base, workers, log_dir) as (api_url, settings):
        load = OpenLoad(api_url, seed=workers)
        stats = httpx.Client(base_url=api_url)
        try:
            for k in range(STEPS):
                rate = round(factor**k, 2)
                step = Step(workers, rate, seconds)
                posted0, errors0 = load.posted, load.errors
                terminal0, step.backlog_start, _ = _backlog(stats)
                t0 = time.time()
                samples: list[int] = []
                sampler_stop = threading.Event()

                def sample(stop: threading.Event = sampler_stop, out: list[int] = samples) -> None:
                    while not stop.wait(0.5):
                        out.append(_backlog(stats)[1])

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                step.send_lag_max = load.run_step(rate, seconds)
                sampler_stop.set()
                sampler.join()
                t1 = time.time()
                terminal1, step.backlog_end, step.queue_depth = _backlog(stats)
                step.posted, step.post_errors = load.posted - posted0, load.errors - errors0
                step.throughput = (terminal1 - terminal0) / (t1 - t0)
                step.mean_backlog = sum(samples) / len(samples) if samples else 0.0
                step.w_mean, step.w_p95 = _latency(settings, t0, t1)
                result.steps.append(step)
                progress.update(
                    task,
                    advance=1,
                    description=f"{workers} worker(s): offered {rate:.1f}/s, "
                    f"done {step.throughput:.1f}/s, backlog {step.backlog_end}",
                )
                if sum(s.saturated for s in result.steps[-2:]) == 2:
                    break
        finally:
            load.close()
            stats.close()
    progress.update(task, completed=STEPS)
    return result


def _table(sweeps: list[Sweep]) -> Any:
    from rich.table import Table

    table = Table(
        title="notepipe capacity (open arrival rate, fresh local stack per row)",
        caption="capacity: peak notes terminal/s; saturated at: first offered rate the stack "
        "could not keep up with; W, L/λW ok: at the last healthy rate; backlog: at the end",
    )
    for column in (
        "workers",
        "capacity/s",
        "saturated at/s",
        "healthy to/s",
        "W mean s",
        "W p95 s",
        "L/λW ok",
        "L/λW last",
        "backlog",
    ):
        table.add_column(column, justify="right")
    for sweep in sweeps:
        healthy, last = sweep.last_healthy, sweep.steps[-1] if sweep.steps else None
        table.add_row(
            str(sweep.workers),
            f"{sweep.capacity:.1f}",
            f"{sweep.saturated_at:.1f}" if sweep.saturated_at else "not reached",
            f"{healthy.offered:.1f}" if healthy else "-",
            f"{healthy.w_mean:.2f}" if healthy else "-",
            f"{healthy.w_p95:.2f}" if healthy else "-",
            f"{healthy.little_ratio:.2f}" if healthy else "-",
            f"{last.little_ratio:.2f}" if last else "-",
            str(last.backlog_end) if last else "-",
        )
    return table


def _plot(sweeps: list[Sweep], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    top = max((s.offered for sw in sweeps for s in sw.steps), default=1.0)
    left.plot([0, top], [0, top], color="grey", linestyle=":", label="throughput = offered")
    for sweep in sweeps:
        offered = [s.offered for s in sweep.steps]
        (line,) = left.plot(offered, [s.throughput for s in sweep.steps], marker="o")
        line.set_label(f"{sweep.workers} worker(s): {sweep.capacity:.1f}/s")
        if sweep.saturated_at:
            left.axvline(sweep.saturated_at, color=line.get_color(), alpha=0.3)
        right.plot(
            offered, [s.backlog_end for s in sweep.steps], marker="o", label=line.get_label()
        )
    left.set(xscale="log", xlabel="offered posts/s", ylabel="notes terminal/s", title="throughput")
    right.set(xscale="log", xlabel="offered posts/s", ylabel="notes not terminal", title="backlog")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run_capacity(args: argparse.Namespace, base: Settings) -> int:
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    try:
        counts = [int(c) for c in str(args.workers).split(",") if c.strip()]
    except ValueError:
        raise ConfigurationError(
            f"--workers takes counts like 1,2,4, not {args.workers!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise ConfigurationError("--workers needs at least one count >= 1")
    duration = parse_duration(args.duration)
    out_dir = Path(args.out)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    console = Console()
    sweeps: list[Sweep] = []
    with (
        tempfile.TemporaryDirectory(prefix="notepipe-capacity-") as logs,
        Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress,
    ):
        for workers in counts:
            max_rate = args.max_rate or 20.0 * workers
            sweeps.append(sweep_one(base, workers, duration, max_rate, Path(logs), progress))
    console.print(_table(sweeps))
    data = [
        {"workers": s.workers, "capacity": s.capacity, "saturated_at": s.saturated_at}
        | {"steps": [asdict(step) | {"little_ratio": step.little_ratio} for step in s.steps]}
        for s in sweeps
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"capacity-{stamp}.json"
    json_path.write_text(json.dumps(data, indent=2))
    png = _plot(sweeps, out_dir / f"capacity-{stamp}.png")
    console.print(f"wrote {png} and {json_path}")
    return 0
