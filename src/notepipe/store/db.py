"""Connections to the ledger: a pool for long-lived processes, single connections for horses."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from notepipe.settings import Settings
from notepipe.store.rows import Row

CONNECT_TIMEOUT_S = 5


def connect(settings: Settings, *, autocommit: bool = True) -> psycopg.Connection[Row]:
    """One connection (used by forked work-horses, which must not share a parent's pool)."""
    return psycopg.connect(
        settings.database_dsn,
        autocommit=autocommit,
        row_factory=dict_row,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="notepipe",
    )


def _check_untraced(conn: psycopg.Connection[Row]) -> None:
    """The pool's liveness check on every checkout, without a span per check."""
    from notepipe.telemetry import untraced

    with untraced():
        ConnectionPool.check_connection(conn)


def make_pool(
    settings: Settings, *, name: str = "notepipe"
) -> ConnectionPool[psycopg.Connection[Row]]:
    """A connection pool for the API and the reconciler; opened lazily, checks connections."""
    return ConnectionPool(
        settings.database_dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": name,
        },
        check=_check_untraced,
        open=False,
        name=name,
        timeout=10,
        reconnect_timeout=60,
    )
