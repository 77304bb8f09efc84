"""The capacity sweep's outputs: a rich table, a JSON file and a two-panel plot."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.commands.capacity import Sweep

COLUMNS = (
    "workers",
    "capacity/s",
    "saturated at/s",
    "healthy to/s",
    "W mean s",
    "W p95 s",
    "L/λW ok",
    "L/λW last",
    "backlog",
)


def rows(sweeps: list[Sweep]) -> list[tuple[str, ...]]:
    """One row per sweep, in :data:`COLUMNS` order ("-" where nothing was measured)."""
    result: list[tuple[str, ...]] = []
    for sweep in sweeps:
        healthy, last = sweep.last_healthy, sweep.steps[-1] if sweep.steps else None
        result.append(
            (
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
        )
    return result


def table(sweeps: list[Sweep]) -> Any:
    from rich.table import Table

    result = Table(
        title="notepipe capacity (open arrival rate, fresh local stack per row)",
        caption="capacity: peak notes terminal/s; saturated at: first offered rate the stack "
        "could not keep up with; W, L/λW ok: at the last healthy rate; backlog: at the end",
    )
    for column in COLUMNS:
        result.add_column(column, justify="right")
    for row in rows(sweeps):
        result.add_row(*row)
    return result


def write_json(sweeps: list[Sweep], path: Path) -> Path:
    data = [
        {"workers": s.workers, "capacity": s.capacity, "saturated_at": s.saturated_at}
        | {"steps": [asdict(step) | {"little_ratio": step.little_ratio} for step in s.steps]}
        for s in sweeps
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def plot(sweeps: list[Sweep], out: Path) -> Path:
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
