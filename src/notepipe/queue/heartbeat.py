"""The lease heartbeat: renews an attempt's lease while it runs, from its own thread."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import psycopg

from notepipe.redact import redact_text
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.db import connect
from notepipe.store.rows import Conn

log = logging.getLogger(__name__)


class LeaseHeartbeat:
    """Context manager: while open, renew the lease of ``(note_id, attempt)`` every
    ``heartbeat_interval`` seconds. ``fenced`` turns True once a renewal matched no
    row: a newer attempt (or the reconciler) took the note over. ``lease_until`` is the
    lease the last successful renewal set (the ledger's clock), or ``None`` before any.

    Renewals go over ``shared`` (the attempt's own connection, idle while the stages
    run; psycopg serialises its use across threads), so an attempt pays one connection
    handshake, not two. Once ``shared`` is broken, the heartbeat opens a connection of
    its own (and reopens it after each failure), so a lease outlives a dropped link.
    """

    def __init__(
        self, settings: Settings, note_id: int, attempt: int, *, shared: Conn | None = None
    ) -> None:
        self.settings = settings
        self.note_id = note_id
        self.attempt = attempt
        self.fenced = False
        self.beats = 0
        self._shared = shared
        self.lease_until: datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-heartbeat-{note_id}", daemon=True
        )
        self._conn: Conn | None = None

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.effective_heartbeat_interval + 5)

    @property
    def running(self) -> bool:
        """Whether the renewal thread still runs (it outlived ``__exit__``'s join)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        interval = self.settings.effective_heartbeat_interval
        try:
            while not self._stop.wait(interval):
                self._beat()
                if self.fenced:
                    return
        finally:
            if self._conn is not None:
                self._conn.close()

    def _connection(self) -> Conn:
        if self._shared is not None and not self._shared.broken and not self._shared.closed:
            return self._shared
        self._shared = None  # broken once: from now on this heartbeat's own connection
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings)
        return self._conn

    def _beat(self) -> None:
        try:
            conn = self._connection()
            renewed = ledger.renew_lease(conn, self.note_id, self.attempt, self.settings.lease_ttl)
        except psycopg.Error as exc:
            log.warning(
                "lease heartbeat for note %s attempt %s failed, will retry: %s",
                self.note_id,
                self.attempt,
                redact_text(str(exc)),
            )
            if self._shared is not None:
                self._shared = None
            elif self._conn is not None:
                self._conn.close()
                self._conn = None
            return
        self.beats += 1
        if renewed is not None:
            self.lease_until = renewed
        else:
            self.fenced = True
            log.warning(
                "note %s attempt %s lost its lease: a newer attempt owns the note",
                self.note_id,
                self.attempt,
            )
