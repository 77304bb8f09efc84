"""``notepipe-harness capacity``: sweep worker counts and find each one's saturation point.

For every worker count a fresh local stack is started (:func:`local_stack`: Redis,
PostgreSQL, API, N workers, reconciler), then an **open** arrival rate is ramped
geometrically (``STEPS`` steps over ``--duration``, from 1 post/s up to ``--max-rate``)
with the harness's load generator (:func:`harness.load.run_load`): posts leave on a
fixed schedule whatever the response times. Per step:

* **throughput** ``λ``: notes that became terminal per second (ledger, ``/stats``);
* **backlog**: accepted notes not yet terminal (``/stats``), at the start and end;
* **W**: mean ``completed_at - created_at`` of the notes that became terminal in
  the step (read directly from PostgreSQL), and p95;
* **Little's law**: the mean backlog ``L`` against ``λ·W``. In a steady state
  they agree; once the system saturates the backlog grows and they part.

A step is *saturated* when throughput falls below 90 % of the offered rate and the
backlog grew by more than 10 % of the step's posts (at least 3). The sweep of a worker
count stops after two saturated steps; its capacity is the highest throughput reached.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from harness.commands.stack import local_stack
from harness.errors import HarnessConfigError
from harness.load import ClientHistory, LoadSpec, run_load, sized_content
from notepipe.settings import Settings
from notepipe.store.db import connect

STEPS = 10
SATURATION = 0.9


class Progress(Protocol):
    """The part of :class:`rich.progress.Progress` a sweep reports to."""

    def add_task(self, description: str, *, total: float | None = ...) -> Any: ...

    def update(self, task_id: Any, **fields: Any) -> None: ...


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

    @property
    def done(self) -> bool:
        """Two saturated steps in a row end the sweep."""
        return len(self.steps) >= 2 and all(s.saturated for s in self.steps[-2:])


def parse_duration(text: str) -> float:
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise HarnessConfigError(f"bad duration {text!r}: use e.g. 60s, 2m or 90") from None


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise HarnessConfigError(f"--workers takes counts like 1,2,4, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise HarnessConfigError("--workers needs at least one count >= 1")
    return counts


def rates(max_rate: float, steps: int = STEPS) -> list[float]:
    """``steps`` offered rates from 1/s up to ``max_rate``, geometrically."""
    factor = max_rate ** (1 / (steps - 1)) if max_rate > 1 and steps > 1 else 1.0
    return [round(factor**k, 2) for k in range(steps)]


def _backlog(client: httpx.Client) -> tuple[int, int, int]:
    """(terminal notes, accepted-not-terminal notes, RQ queue depth) from ``/stats``."""
    stats = client.get("/stats", timeout=10).json()
    notes: dict[str, int] = stats["notes"]
    terminal = notes.get("completed", 0) + notes.get("failed", 0)
    return terminal, sum(notes.values()) - terminal, int(stats["rq"]["queued"])


def _latency(settings: Settings, since: float, until: float) -> tuple[float, float]:
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


def run_step(api_url: str, stats: httpx.Client, settings: Settings, step: Step, seed: int) -> None:
    """Offer ``step.offered`` posts/s for ``step.seconds`` and fill in what was measured."""
    terminal0, step.backlog_start, _ = _backlog(stats)
    t0 = time.time()
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(_backlog(stats)[1])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    history = ClientHistory()
    spec = LoadSpec(
        notes=int(step.offered * step.seconds), rate=step.offered, concurrency=64, seed=seed
    )
    try:
        step.send_lag_max = run_load(api_url, spec, history, content=sized_content)
        time.sleep(max(0.0, t0 + step.seconds - time.time()))
    finally:
        stop.set()
        sampler.join()
    t1 = time.time()
    terminal1, step.backlog_end, step.queue_depth = _backlog(stats)
    counts = history.counts
    step.posted = counts.get("ok", 0)
    step.post_errors = counts.get("fail", 0) + counts.get("info", 0)
    step.throughput = (terminal1 - terminal0) / (t1 - t0)
    step.mean_backlog = sum(samples) / len(samples) if samples else 0.0
    step.w_mean, step.w_p95 = _latency(settings, t0, t1)


def sweep_one(
    workers: int, duration: float, max_rate: float, workdir: Path, progress: Progress
) -> Sweep:
    """Ramp the offered rate against a fresh stack of ``workers`` workers."""
    result = Sweep(workers)
    seconds = duration / STEPS
    task = progress.add_task(f"{workers} worker(s): starting the stack", total=STEPS)
    with local_stack(workdir / f"w{workers}", workers=workers) as stack:
        assert stack.api is not None and stack.settings is not None
        api_url = str(stack.api.url)
        with httpx.Client(base_url=api_url) as stats:
            for k, rate in enumerate(rates(max_rate)):
                step = Step(workers, rate, seconds)
                run_step(api_url, stats, stack.settings, step, seed=workers * 100 + k)
                result.steps.append(step)
                progress.update(
                    task,
                    advance=1,
                    description=f"{workers} worker(s): offered {rate:.1f}/s, "
                    f"done {step.throughput:.1f}/s, backlog {step.backlog_end}",
                )
                if result.done:
                    break
    progress.update(task, completed=STEPS)
    return result


def run_capacity(*, workers: str, duration: str, max_rate: float, out: Path) -> int:
    """Sweep every worker count, print the table, write ``capacity-*.json`` and ``.png``."""
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from harness.commands.capacity_report import plot, table, write_json

    counts = parse_counts(workers)
    seconds = parse_duration(duration)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    console = Console()
    sweeps: list[Sweep] = []
    with (
        tempfile.TemporaryDirectory(prefix="notepipe-capacity-") as workdir,
        RichProgress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as progress,
    ):
        for count in counts:
            top = max_rate or 20.0 * count
            sweeps.append(sweep_one(count, seconds, top, Path(workdir), progress))
    console.print(table(sweeps))
    json_path = write_json(sweeps, out / f"capacity-{stamp}.json")
    png = plot(sweeps, out / f"capacity-{stamp}.png")
    console.print(f"wrote {png} and {json_path}")
    return 0
