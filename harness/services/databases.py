"""Dropping a database the harness created on its PostgreSQL service."""

from __future__ import annotations

import psycopg
from psycopg import sql

from harness.wait import wait_until

#: How long an autovacuum worker may keep a database from being dropped.
DROP_TIMEOUT_S = 10.0


def drop_database(admin_url: str, name: str, *, timeout: float = DROP_TIMEOUT_S) -> None:
    """``DROP DATABASE IF EXISTS name WITH (FORCE)``, which ends the sessions still in it.

    An autovacuum worker runs as the bootstrap superuser, and the harness's role (not a
    superuser) may not end it: PostgreSQL refuses with ``InsufficientPrivilege``. The
    worker is done with a test database's few tables within moments, so the drop is tried
    again until ``timeout``; then :class:`harness.wait.WaitTimeout` names the last refusal.
    """
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))

    def dropped() -> bool:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)
        return True

    wait_until(
        dropped,
        timeout,
        describe=f"database {name} to be dropped",
        transient=(psycopg.errors.InsufficientPrivilege,),
    )
