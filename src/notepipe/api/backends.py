"""What the API's routes share: the ledger pool, Redis and the note queue."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from fastapi import HTTPException
from psycopg_pool import ConnectionPool, PoolTimeout
from redis import Redis

from notepipe.queue.enqueue import RQNoteQueue
from notepipe.redact import redact_text
from notepipe.settings import Settings
from notepipe.store.rows import Conn

log = logging.getLogger(__name__)

DB_UNAVAILABLE = "the ledger database is unavailable; nothing was written, retry later"


@dataclass(frozen=True)
class Backends:
    settings: Settings
    pool: ConnectionPool[Conn]
    redis: Redis[bytes]
    note_queue: RQNoteQueue

    @contextmanager
    def db(self) -> Iterator[Conn]:
        """A pooled connection; an unreachable database is a 503 (nothing written)."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("database unavailable: %s", redact_text(str(exc)))
            raise HTTPException(503, DB_UNAVAILABLE) from exc
