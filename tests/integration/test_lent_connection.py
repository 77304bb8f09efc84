"""The worker's one ledger connection, lent to each forked horse in turn, against a real
PostgreSQL: reused while every job gives it back clean, replaced whenever one does not
or the server ended the session, and never lent when it cannot be opened."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.processes import start_worker
from harness.services.ports import free_port
from harness.wait import wait_until
from notepipe.queue.connection import redis_connection
from notepipe.queue.enqueue import RQNoteQueue
from notepipe.queue.lent_connection import (
    BORROWED,
    RETURNED,
    ConnectionLender,
    install_lender,
    uninstall_lender,
)
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn

#: More executions of one statement than psycopg's default prepare threshold (5).
OVER_PREPARE_THRESHOLD = 7


@pytest.fixture
def lender(pipeline_settings: Settings) -> Iterator[ConnectionLender]:
    lender = install_lender(pipeline_settings)
    try:
        yield lender
    finally:
        uninstall_lender()


def _in_horse(lender: ConnectionLender, job: Callable[[], Any]) -> Any:
    """Prepare the connection and fork, as a worker does for each job; run ``job`` in the
    child, which exits like an RQ work-horse (``os._exit``), and return its JSON-encoded
    result."""
    lender.prepare()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(report_r)
        code = 0
        try:
            os.write(report_w, json.dumps(job()).encode())
        except BaseException as exc:
            os.write(report_w, json.dumps({"error": repr(exc)}).encode())
            code = 1
        os._exit(code)
    os.close(report_w)
    try:
        report = os.read(report_r, 65536).decode()
    finally:
        os.close(report_r)
    _, status = os.waitpid(pid, 0)
    result = json.loads(report)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def _backend_pid(conn: Conn) -> int:
    row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    return int(row["pid"])


def _clean_job(lender: ConnectionLender) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        conn = lender.borrow()
        assert conn is not None
        pids = {_backend_pid(conn) for _ in range(OVER_PREPARE_THRESHOLD)}
        return {"pids": sorted(pids), "clean": lender.give_back(conn)}

    return job


def _alive(conn: Conn, pid: int) -> bool:
    row = conn.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = %s", (pid,))
    found = row.fetchone()
    return bool(found and found["n"])


def test_successive_horses_share_one_session(lender: ConnectionLender) -> None:
    reports = [_in_horse(lender, _clean_job(lender)) for _ in range(3)]
    assert all(r["clean"] for r in reports), reports
    pids = {pid for r in reports for pid in r["pids"]}
    # One backend for all three horses, and psycopg never prepared a statement twice
    # (each horse ran one more than its prepare threshold).
    assert len(pids) == 1, reports
    assert lender.state == RETURNED and lender.reopened == 0


def test_a_horse_that_dies_holding_the_connection_gets_it_replaced(
    lender: ConnectionLender, ledger_conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    def dies_mid_statement() -> int:
        conn = lender.borrow()
        assert conn is not None
        pid = _backend_pid(conn)
        conn.pgconn.send_query(b"SELECT pg_sleep(0.5)")  # in flight when the horse dies
        return pid

    first = _in_horse(lender, dies_mid_statement)
    assert lender.state == BORROWED
    with caplog.at_level(logging.INFO, logger="notepipe.queue.lent_connection"):
        after = _in_horse(lender, _clean_job(lender))
    assert "the last job did not give it back clean" in caplog.text
    assert after["clean"] and after["pids"] != [first], (first, after)
    assert lender.reopened == 1
    wait_until(lambda: not _alive(ledger_conn, first), 10, describe="the dirty session to end")


def test_a_connection_left_in_a_transaction_is_not_given_back(lender: ConnectionLender) -> None:
    def leaves_a_transaction_open() -> dict[str, Any]:
        conn = lender.borrow()
        assert conn is not None
        conn.execute("BEGIN")
        return {"pid": _backend_pid(conn), "clean": lender.give_back(conn)}

    first = _in_horse(lender, leaves_a_transaction_open)
    assert first["clean"] is False and lender.state == BORROWED
    after = _in_horse(lender, _clean_job(lender))
    assert after["pids"] != [first["pid"]] and lender.reopened == 1


def test_a_session_the_server_ended_is_replaced(
    lender: ConnectionLender, ledger_conn: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    first = _in_horse(lender, _clean_job(lender))
    [pid] = first["pids"]
    ledger_conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: not _alive(ledger_conn, pid), 10, describe="the session to end")
    with caplog.at_level(logging.INFO, logger="notepipe.queue.lent_connection"):
        after = _in_horse(lender, _clean_job(lender))
    assert after["clean"] and after["pids"] != [pid]
    assert lender.reopened == 1
    assert "the server ended its session" in caplog.text


def test_a_fork_while_a_horse_holds_the_connection_leaves_it_alone(
    lender: ConnectionLender,
) -> None:
    """Only the worker's horse fork prepares the connection: another fork of the worker while
    a horse uses it (RQ's scheduler process, say) must not replace it under the horse."""
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def holds_across_a_fork() -> dict[str, Any]:
        conn = lender.borrow()
        assert conn is not None
        before = _backend_pid(conn)
        os.write(ready_w, b"x")
        os.read(go_r, 1)  # the worker forks something else meanwhile
        return {"same": _backend_pid(conn) == before, "clean": lender.give_back(conn)}

    lender.prepare()
    report_r, report_w = os.pipe()
    horse = os.fork()
    if horse == 0:  # pragma: no cover - runs in the child
        try:
            result = holds_across_a_fork()
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(report_w, json.dumps(result).encode())
        os._exit(0)
    assert os.read(ready_r, 1) == b"x"  # the horse holds the connection
    other = os.fork()
    if other == 0:  # pragma: no cover - another child of the worker, gone at once
        os._exit(0)
    os.waitpid(other, 0)
    os.write(go_w, b"x")
    report = json.loads(os.read(report_r, 1024))
    os.waitpid(horse, 0)
    for fd in (go_r, go_w, ready_r, ready_w, report_r, report_w):
        os.close(fd)
    assert report == {"same": True, "clean": True}
    assert lender.state == RETURNED and lender.reopened == 0


def test_without_a_fork_the_process_checks_the_connection_itself(
    lender: ConnectionLender,
) -> None:
    """SimpleWorker runs jobs in the worker process: a clean connection is kept, one a job
    did not give back is replaced on the next borrow."""
    conn = lender.borrow()
    assert conn is not None
    pid = _backend_pid(conn)
    assert lender.give_back(conn)
    again = lender.borrow()
    assert again is conn and _backend_pid(again) == pid
    # not given back: the next borrow gets a new session
    fresh = lender.borrow()
    assert fresh is not None and fresh is not conn and _backend_pid(fresh) != pid
    assert lender.give_back(fresh) and not lender.give_back(conn)


def test_an_unreachable_ledger_lends_nothing(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url=f"postgresql://notepipe:x@127.0.0.1:{free_port()}/n")
    lender = ConnectionLender(settings)
    with caplog.at_level(logging.WARNING, logger="notepipe.queue.lent_connection"):
        assert lender.borrow() is None
    assert "each job will open its own" in caplog.text
    assert ":x@" not in caplog.text


def _sessions(conn: Conn) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row["sessions"])


def _other_sessions(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize("worker_class", ["rq.worker.Worker", "rq.worker.SimpleWorker"])
def test_a_worker_runs_all_its_jobs_on_one_session(
    ledger_conn: Conn, make_settings: Callable[..., Settings], log_dir: Path, worker_class: str
) -> None:
    settings = make_settings(worker_class=worker_class)
    notes = 8
    queue = RQNoteQueue(settings, redis_connection(settings))
    note_ids = []
    for i in range(notes):
        note_id = int(ledger.create_note(ledger_conn, f"note {i}", {}, {})["id"])
        ledger.mark_queued(ledger_conn, note_id, queue.enqueue_note(note_id))
        note_ids.append(note_id)
    before = _sessions(ledger_conn)
    worker = start_worker(settings, log_dir, burst=True)
    assert worker.wait_exit(timeout=60) == 0, worker.logs()
    # a session's statistics are flushed when it ends: wait for the worker's to end
    wait_until(lambda: _other_sessions(ledger_conn) == 0, 10, describe="the worker's sessions")
    notes_left = [ledger.get_note(ledger_conn, note_id) for note_id in note_ids]
    assert {n["status"] for n in notes_left if n} == {"completed"}, worker.logs()
    opened = _sessions(ledger_conn) - before
    # One lent session for every job (a job opening its own would make it 1 + notes).
    assert opened == 1, (opened, worker.logs())


def test_only_forking_worker_classes_are_wrapped() -> None:
    from rq.worker import SimpleWorker, SpawnWorker, Worker

    from notepipe.queue.lent_connection import lending

    assert lending(SimpleWorker) is SimpleWorker  # jobs in the worker: borrow() checks
    assert lending(SpawnWorker) is SpawnWorker  # spawned horses inherit nothing
    wrapped = lending(Worker)
    assert issubclass(wrapped, Worker) and wrapped.__name__ == "Worker"
    assert wrapped.fork_work_horse is not Worker.fork_work_horse
