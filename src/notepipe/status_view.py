"""``notepipe status``: like ``rq info``, plus the ledger's counts per status."""

from __future__ import annotations

import json

import psycopg
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from notepipe.queue.connection import redis_connection
from notepipe.redact import redact_text, redact_url
from notepipe.settings import Settings
from notepipe.stats import ledger_stats, rq_stats
from notepipe.store.db import connect


def print_status(settings: Settings, *, as_json: bool = False) -> int:
    problems: list[str] = []
    data: dict[str, object] = {
        "redis": redact_url(settings.redis_dsn),
        "database": redact_url(settings.database_dsn),
    }
    try:
        data["rq"] = rq_stats(redis_connection(settings), settings.queue_name)
    except RedisError as exc:
        problems.append(f"redis: {redact_text(str(exc))}")
    try:
        with connect(settings) as conn:
            data["notes"] = ledger_stats(conn)
    except psycopg.Error as exc:
        problems.append(f"postgres: {redact_text(str(exc))}")
    data["problems"] = problems
    if as_json:
        print(json.dumps(data, indent=2))
        return 1 if problems else 0
    console = Console()
    rq = data.get("rq")
    if isinstance(rq, dict):
        table = Table(title=f"RQ queue {rq['queue']}", show_header=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("queued", str(rq["queued"]))
        table.add_row("intermediate", str(rq["intermediate"]))
        for name, count in rq["registries"].items():
            table.add_row(name, str(count))
        table.add_row("workers", str(rq["worker_count"]))
        console.print(table)
        for worker in rq["workers"]:
            console.print(f"  worker {worker}")
    notes = data.get("notes")
    if isinstance(notes, dict):
        table = Table(title="ledger (PostgreSQL)", show_header=False)
        table.add_column("status")
        table.add_column("notes", justify="right")
        for status, count in notes.items():
            table.add_row(status, str(count))
        console.print(table)
    for problem in problems:
        console.print(f"[red]unavailable[/red] {problem}")
    return 1 if problems else 0
