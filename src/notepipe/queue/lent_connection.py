"""One ledger connection per worker, lent to the jobs it runs, one job at a time.

Without it, every forked work-horse opens its own connection to the ledger: a TCP
connect, a SCRAM exchange and, through PgBouncer, a server reset when it closes. That
costs more CPU (horse, pooler and PostgreSQL together) than the attempt's own two
statements. Instead the worker opens one connection, never uses it itself, and each
horse inherits it across the fork. A worker runs one horse at a time, so two processes
never use the connection at once.

Handing a connection from one process to the next is safe only if each job leaves it
clean. The rules:

* A job that borrows the connection marks it *borrowed* in a byte of memory it shares
  with the worker (an anonymous shared mapping). It marks it *returned* only if, at
  its end, no statement is in flight, no transaction is open and the connection is
  not broken (:meth:`ConnectionLender.give_back`).
* Before it forks each horse the worker looks at that byte. A connection still marked borrowed
  (its horse was killed, timed out mid-statement or broke the link) is closed and a new
  one opened. So is one the server has written to since (it closed the session, or
  PostgreSQL restarted): an idle connection has nothing to read.
* A job that finds no connection to borrow (none could be opened, or a plain
  ``rq worker`` runs it) opens its own, as before.
* psycopg's automatic server-side prepared statements are off on this connection: a
  horse starts from the worker's copy of psycopg's state, which knows nothing of what an
  earlier horse prepared, and would prepare the same name again.
* TLS (or GSS) encrypted connections are never lent: their cipher state lives in the
  process that used them last, and the worker's copy would be stale.

Under ``SimpleWorker`` (no fork) the same checks run in the worker process itself when
the next job borrows the connection.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import select
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq
from rq.worker import SpawnWorker

from notepipe.redact import redact_text
from notepipe.store.db import connect

if TYPE_CHECKING:
    from notepipe.settings import Settings
    from notepipe.store.rows import Conn

log = logging.getLogger(__name__)

FREE = 0  # no job has touched the connection since the worker checked it
BORROWED = 1  # a job is using it, or was and did not give it back clean
RETURNED = 2  # the last job left it idle and healthy


class ConnectionLender:
    """The worker's connection to the ledger and the shared byte that says who holds it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.owner_pid = os.getpid()
        self._conn: Conn | None = None
        self._state = mmap.mmap(-1, 1)  # MAP_SHARED | MAP_ANONYMOUS: seen by forked horses
        self.reopened = 0  # connections opened after the first (a dirty or dead one replaced)

    @property
    def state(self) -> int:
        return self._state[0]

    def _set(self, state: int) -> None:
        self._state[0] = state

    def prepare(self) -> None:
        """In the worker, before a job runs: replace a connection a job left dirty or the
        server closed, open one if there is none, and mark it free. Errors are logged, not
        raised: the job then opens a connection of its own."""
        conn = self._conn
        if conn is not None:
            left_borrowed = self.state == BORROWED
            if left_borrowed or not _idle_and_quiet(conn):
                log.info(
                    "replacing the connection lent to jobs: %s",
                    "the last job did not give it back clean"
                    if left_borrowed
                    else "the server ended its session",
                )
                self._discard()
                self.reopened += 1
        if self._conn is None:
            self._conn = self._open()
        self._set(FREE)

    def borrow(self) -> Conn | None:
        """In a job: the lent connection (now marked borrowed), or None."""
        if os.getpid() == self.owner_pid:
            self.prepare()  # no fork (SimpleWorker, or a direct call): check it here
        conn = self._conn
        if conn is None:
            return None
        self._set(BORROWED)
        return conn

    def give_back(self, conn: Conn) -> bool:
        """In a job, once nothing else uses ``conn``: mark it returned if it is clean.
        Returns whether it was."""
        if conn is not self._conn or self.state != BORROWED:
            return False
        clean = (
            not conn.closed
            and not conn.broken
            and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        )
        if clean:
            self._set(RETURNED)
        return clean

    def close(self) -> None:
        """In the worker, when it stops."""
        self._discard()

    def _open(self) -> Conn | None:
        try:
            conn = connect(self._settings)
        except psycopg.Error as exc:
            log.warning(
                "could not open the connection lent to jobs (each job will open its own): %s",
                redact_text(str(exc)),
            )
            return None
        if conn.pgconn.ssl_in_use or conn.pgconn.used_gssapi:
            log.info("the ledger connection is encrypted: jobs open their own connections")
            conn.close()
            return None
        conn.prepare_threshold = None  # see the module docstring
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _idle_and_quiet(conn: Conn) -> bool:
    """An idle connection has nothing to read: data (an error, a notice) or EOF means the
    server ended the session, or spoke since the last job read its last result."""
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


_lender: ConnectionLender | None = None


def install_lender(settings: Settings) -> ConnectionLender:
    """Make this process a lender (its horses inherit it); see :func:`lending`."""
    global _lender  # noqa: PLW0603 - inherited by forked horses on purpose
    uninstall_lender()
    lender = ConnectionLender(settings)
    _lender = lender
    return lender


def uninstall_lender() -> None:
    global _lender
    lender, _lender = _lender, None
    if lender is not None:
        lender.close()


def current_lender() -> ConnectionLender | None:
    return _lender


def lending(worker_class: type[Any]) -> type[Any]:
    """``worker_class`` preparing the lent connection right before it forks each horse: in
    the worker, once RQ has recorded the job as started (a worker killed while it
    reconnects leaves a started job, which RQ and the reconciler recover), and while no
    horse of it is alive (RQ runs one job at a time). Not a hook on every fork: a fork
    while a horse ran (RQ's scheduler process, say) would replace the connection under it.

    A class that does not fork its horses is returned as it is: ``SimpleWorker`` runs jobs
    in the worker process, where :meth:`ConnectionLender.borrow` checks the connection
    itself, and ``SpawnWorker``'s horses inherit nothing (they open their own)."""
    if not hasattr(worker_class, "fork_work_horse") or issubclass(worker_class, SpawnWorker):
        return worker_class

    def fork_work_horse(self: Any, job: Any, queue: Any) -> Any:
        lender = current_lender()
        if lender is not None and os.getpid() == lender.owner_pid:
            lender.prepare()
        return worker_class.fork_work_horse(self, job, queue)

    return type(
        worker_class.__name__,
        (worker_class,),
        {
            "fork_work_horse": fork_work_horse,
            "__module__": __name__,
            "__doc__": worker_class.__doc__,
        },
    )
