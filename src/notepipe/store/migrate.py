"""SQL migrations, applied in order and recorded in ``schema_migrations``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import psycopg

from notepipe.store.rows import Row

log = logging.getLogger(__name__)

_LOCK_KEY = 0x6E6F7465  # "note": serialises concurrent migrators


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("notepipe.store") / "migrations"
    found = [
        Migration(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda m: m.version)


def migrate(conn: psycopg.Connection[Row]) -> list[str]:
    """Apply pending migrations in one transaction each; return the versions applied."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        done = {str(row["version"]) for row in rows}
        for migration in available_migrations():
            if migration.version in done:
                continue
            log.info("applying migration %s", migration.version)
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
            )
            applied_now.append(migration.version)
    return applied_now
