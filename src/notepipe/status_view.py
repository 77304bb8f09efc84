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
        table = Table(title=f"queue {rq['queue']}")
        for column in ("queued", "intermediate", *rq["registries"].keys(), "workers"):
            table.add_column(column, justify="right")
        table.add_row(
            str(rq["queued"]),
            str(rq["intermediate"]),
            *(str(n) for n in rq["registries"].values()),
            str(rq["worker_count"]),
        )
        console.print(table)
        for worker in rq["workers"]:
            console.print(f"  worker {worker}")
    notes = data.get("notes")
    if isinstance(notes, dict):
        table = Table(title="ledger")
        for status in notes:
            table.add_column(status, justify="right")
        table.add_row(*(str(n) for n in notes.values()))
        console.print(table)
    for problem in problems:
        console.print(f"[red]unavailable[/red] {problem}")
    return 1 if problems else 0
