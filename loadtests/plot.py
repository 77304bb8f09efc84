"""Plot a Locust stats history with fault intervals shaded.

    python loadtests/plot.py reports/chaos_stats_history.csv \
        --faults reports/faults.jsonl -o reports/chaos.png

Top: throughput (POST /notes per second, notes reaching a terminal status per
second). Bottom: end-to-end latency p50/p95 (Locust's rolling window, plotted
at the time notes became terminal as seen by the followers). Faults from
``notepipe-harness chaos`` JSONL records are shaded from their real start to end
(instant faults are vertical lines). Run with ``--csv-full-history`` so the
history has per-name rows (the ``e2e`` percentiles).

Locust imports every ``*.py`` in loadtests/; this module only defines
functions and imports matplotlib lazily (Agg backend).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

E2E = ("e2e", "accepted->terminal")
POST = ("POST", "/notes")


def read_history(path: Path) -> dict[tuple[str, str], list[dict[str, float]]]:
    """Rows of a ``*_stats_history.csv`` by (type, name), numeric columns as floats."""
    series: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            values: dict[str, float] = {}
            for key, value in row.items():
                if key in ("Type", "Name"):
                    continue
                try:
                    values[key] = float(value)
                except (TypeError, ValueError):
                    values[key] = float("nan")
            series[(row["Type"], row["Name"])].append(values)
    return series


def read_faults(paths: Sequence[Path]) -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                faults.append(json.loads(line))
    return sorted(faults, key=lambda f: float(f["start"]))


def plot(history: Path, faults: Sequence[Path], out: Path, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_history(history)
    rows = [r for rows in series.values() for r in rows]
    if not rows:
        raise SystemExit(f"{history}: no rows")
    t0 = min(r["Timestamp"] for r in rows)

    def xs(key: tuple[str, str]) -> list[float]:
        return [r["Timestamp"] - t0 for r in series.get(key, [])]

    def ys(key: tuple[str, str], column: str, scale: float = 1.0) -> list[float]:
        return [r[column] * scale for r in series.get(key, [])]

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5))
    top.plot(xs(POST), ys(POST, "Requests/s"), label="POST /notes per s")
    top.plot(xs(E2E), ys(E2E, "Requests/s"), label="notes terminal per s")
    top.plot(xs(E2E), ys(E2E, "Failures/s"), label="e2e failures per s", color="tab:red")
    top.set_ylabel("per second")
    bottom.plot(xs(E2E), ys(E2E, "50%", 1e-3), label="e2e p50")
    bottom.plot(xs(E2E), ys(E2E, "95%", 1e-3), label="e2e p95")
    bottom.set_ylabel("accepted -> terminal (s)")
    bottom.set_xlabel("seconds since the first stats row")
    if not series.get(E2E):
        bottom.text(0.5, 0.5, "no e2e rows: run Locust with --csv-full-history", ha="center")

    colors = plt.get_cmap("tab10")
    kinds: dict[str, Any] = {}
    for fault in read_faults(faults):
        kind = str(fault["kind"])
        color = kinds.setdefault(kind, colors(len(kinds) % 10))
        start = float(fault["start"]) - t0
        end = float(fault.get("end") or fault["start"]) - t0
        for ax in (top, bottom):
            if end - start < 0.5:
                ax.axvline(start, color=color, linestyle="--", alpha=0.8)
            else:
                ax.axvspan(start, end, color=color, alpha=0.18)
    for kind, color in kinds.items():
        top.plot([], [], color=color, linewidth=8, alpha=0.3, label=f"fault: {kind}")
    top.legend(loc="upper left", fontsize="small", ncol=2)
    bottom.legend(loc="upper left", fontsize="small")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.suptitle(title or history.name)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("history", type=Path, help="Locust *_stats_history.csv")
    parser.add_argument("--faults", type=Path, action="append", default=[], help="chaos JSONL")
    parser.add_argument("-o", "--out", type=Path, default=None, help="PNG (default: next to CSV)")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    out = args.out or args.history.with_suffix(".png")
    print(plot(args.history, args.faults, out, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
