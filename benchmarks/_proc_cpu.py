"""CPU time of process trees, from ``/proc``: a benchmark charges a process with its own
CPU and that of all its descendants, live or reaped (a worker's horses, PostgreSQL's
backends: behind PgBouncer they live long, so a postmaster's reaped-children time alone
misses them). A descendant reaped between two readings moves into its parent's figure,
so the difference of two readings stays exact.

The leading underscore marks a helper module, not a benchmark to run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of ``pid`` and of the children it reaped), or
    None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), sum(int(f) for f in fields[11:15]) / _TICKS


def process_cpu(pid: int) -> float:
    """CPU seconds so far of ``pid`` and the children it reaped (0 once it is gone)."""
    stat = _stat(pid)
    return stat[1] if stat is not None else 0.0


def own_cpu(pid: int) -> float:
    """CPU seconds so far of ``pid`` itself, without its children (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(f) for f in fields[11:13]) / _TICKS


def process_table() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, CPU seconds as :func:`process_cpu`)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def tree_cpu(roots: Iterable[int], table: dict[int, tuple[int, float]] | None = None) -> float:
    """CPU seconds so far of ``roots`` and every live descendant (0 for a root gone)."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
            todo.extend(children.get(pid, []))
    return total
