"""A busy-worker fault reads a frozen worker's claims once its in-flight ledger writes
landed (``settled_claims``), against a real PostgreSQL."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import psycopg
import pytest

from harness.checker.holders import Claim
from harness.faults import FaultSpec
from harness.faults.effect import FaultMissed
from harness.faults.lifecycle import KillAtAttempt
from harness.faults.process import KillWorker, freeze_holding, settled_claims
from harness.processes import PipelineProcess
from harness.stack import PipelineStack
from harness.wait import wait_until
from notepipe.contracts.rq import worker_name
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.db import connect
from notepipe.store.rows import Conn


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[PipelineProcess]:
    """A live process standing for a worker: the ledger names it by its pid; it leads its
    own process group, as a worker does (a fault freezes the group)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        yield PipelineProcess("worker", "worker-0", proc, tmp_path / "worker.log")
    finally:
        proc.kill()
        proc.wait()


def _fault(settings: Settings) -> KillWorker:
    stack = cast(PipelineStack, SimpleNamespace(direct_settings=settings))  # the ledger only
    return KillWorker(stack, FaultSpec("kill_worker", at=0, target="busy"), random.Random(0))


def _settled(fault: KillWorker, worker: PipelineProcess) -> list[Claim]:
    """What a busy wait reads of a frozen worker: its claims once in-flight writes landed."""
    with fault.ledger() as conn:
        return settled_claims(conn, worker)


def _claimed(conn: Conn, worker: PipelineProcess) -> tuple[int, int]:
    note_id = int(ledger.create_note(conn, "frozen", {}, {})["id"])
    claimed = ledger.claim(
        conn, note_id, worker=worker_name(worker.pid), job_id="j", lease_ttl=30.0, max_attempts=3
    )
    assert isinstance(claimed, ledger.Claim), claimed
    return note_id, claimed.attempt


def _waiting_for_a_lock(conn: Conn) -> bool:
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    ).fetchone()
    return bool(row and row["n"])


def test_a_completion_in_flight_when_frozen_is_waited_for(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    fault = _fault(pipeline_settings)
    note_id, attempt = _claimed(ledger_conn, worker)
    result: list[Any] = []
    with connect(pipeline_settings, autocommit=False) as horse:
        # the frozen horse's last write (its attempt's end): sent, not yet committed
        ledger.fail_attempt(horse, note_id, attempt, "boom", max_attempts=3)
        assert [c.note_id for c in fault.claims_of(worker)] == [note_id]  # looks busy
        seizing = threading.Thread(target=lambda: result.append(_settled(fault, worker)))
        seizing.start()
        wait_until(lambda: _waiting_for_a_lock(ledger_conn), 10, describe="the share lock wait")
        horse.commit()  # PostgreSQL ends the statement without the (frozen) client
        seizing.join(10)
    assert result == [[]]  # its attempt ended: nothing left to interrupt


def test_a_transaction_the_frozen_horse_holds_open_keeps_its_claim(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    fault = _fault(pipeline_settings)
    note_id, _ = _claimed(ledger_conn, worker)
    with connect(pipeline_settings, autocommit=False) as horse:
        # frozen between two statements of its own transaction: only the kill ends it
        horse.execute("UPDATE notes SET lease_until = lease_until WHERE id = %s", (note_id,))
        held = _settled(fault, worker)  # gives up on the lock after 500 ms
        horse.rollback()
    assert [c.note_id for c in held] == [note_id]


def test_a_claim_is_the_workers_whatever_the_machine_was_called_when_it_started(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    # A worker names itself notepipe.<host>.<pid> with the hostname it read at start; the
    # machine may be renamed since. The fault knows its worker by the pid.
    fault = _fault(pipeline_settings)
    note_id = int(ledger.create_note(ledger_conn, "renamed", {}, {})["id"])
    named_then = worker_name(worker.pid, incarnation=1, host="called-otherwise-then")
    claimed = ledger.claim(
        ledger_conn, note_id, worker=named_then, job_id="j", lease_ttl=30.0, max_attempts=3
    )
    assert isinstance(claimed, ledger.Claim), claimed
    other = int(ledger.create_note(ledger_conn, "another pid", {}, {})["id"])
    ledger.claim(
        ledger_conn,
        other,
        worker=worker_name(worker.pid * 10 + 1),
        job_id="k",
        lease_ttl=30.0,
        max_attempts=3,
    )
    assert [c.note_id for c in fault.claims_of(worker)] == [note_id]


def test_a_busy_wait_that_misses_says_what_the_ledger_showed(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    # A note processing by no live worker of the stack: the fault misses, and its message
    # says whose the claim was and which workers were alive (not just "nobody was busy").
    note_id = int(ledger.create_note(ledger_conn, "held elsewhere", {}, {})["id"])
    stranger = worker_name(worker.pid * 10 + 1, host="elsewhere")
    ledger.claim(ledger_conn, note_id, worker=stranger, job_id="j", lease_ttl=30.0, max_attempts=3)
    stack = cast(
        PipelineStack, SimpleNamespace(direct_settings=pipeline_settings, workers=[worker])
    )
    spec = FaultSpec("kill_worker", at=0, target="busy", params={"timeout": 0.3})
    with pytest.raises(FaultMissed) as missed:
        KillWorker(stack, spec, random.Random(0)).seize()
    message = str(missed.value)
    assert "no worker was busy" in message, message
    assert f"1 processing (note {note_id} by {stranger} (no live worker))" in message, message
    assert f"live workers: worker-0 pid {worker.pid}" in message, message


def test_a_kill_at_attempt_hits_even_if_the_lease_expires_before_its_result_is_read(
    ledger_conn: Conn,
    pipeline_settings: Settings,
    worker: PipelineProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # CI once saw the reconciler take the killed attempt over (lease expired) before the
    # fault read the ledger, and the kill counted as a miss. The fault freezes the holder,
    # checks its claim, kills it frozen: an attempt it held then did not end by itself.
    note_id, attempt = _claimed(ledger_conn, worker)
    kill = worker.kill

    def kill_then_lease_expires() -> None:
        kill()
        ledger_conn.execute(
            "UPDATE notes SET lease_until = clock_timestamp() - interval '1 minute' WHERE id = %s",
            (note_id,),
        )
        assert ledger.recover_expired(ledger_conn, grace=0, max_attempts=3)

    monkeypatch.setattr(worker, "kill", kill_then_lease_expires)
    stack = cast(
        PipelineStack, SimpleNamespace(direct_settings=pipeline_settings, workers=[worker])
    )
    spec = FaultSpec(
        "kill_at_attempt", at=0, params={"note_index": "any", "attempt": attempt, "timeout": 5}
    )
    fault = KillAtAttempt(stack, spec, random.Random(0))
    fault.inject()
    assert fault.hit, fault.effect
    assert fault.effect.evidence["interrupted"] == [{"note": note_id, "attempt": attempt}]
    assert not worker.alive()


def test_a_kill_at_attempt_leaves_a_holder_alone_whose_attempt_ended_as_it_froze(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    # Seen held, then gone by the time it is frozen (the attempt completed in between): the
    # holder is thawed and spared, and the fault waits on (here: misses at its timeout).
    note_id, attempt = _claimed(ledger_conn, worker)
    stack = cast(
        PipelineStack, SimpleNamespace(direct_settings=pipeline_settings, workers=[worker])
    )
    spec = FaultSpec(
        "kill_at_attempt", at=0, params={"note_index": "any", "attempt": attempt, "timeout": 0.5}
    )
    fault = KillAtAttempt(stack, spec, random.Random(0))
    completed = [False]

    def claims_then_completion(conn: Any, worker: PipelineProcess) -> list[Any]:
        if not completed[0]:
            completed[0] = ledger.complete(ledger_conn, note_id, attempt, {})
        return []

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.faults.process.settled_claims", claims_then_completion)
        with pytest.raises(FaultMissed):
            fault.inject()
    assert completed[0]
    assert worker.alive()
    assert _state(worker.pid) not in ("T", "t"), "left frozen"


def _state(pid: int) -> str:
    """The process's state letter in /proc (``T``: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_worker_frozen_for_a_ledger_read_that_fails_is_thawed(
    ledger_conn: Conn, pipeline_settings: Settings, worker: PipelineProcess
) -> None:
    # The read fails after the freeze (the ledger's connection broke): the error goes to
    # the busy wait (a transient one is retried), and the worker is not left stopped.
    fault = _fault(pipeline_settings)

    def broken(conn: Any, held_by: PipelineProcess) -> list[Any]:
        assert _state(held_by.pid) in ("T", "t")  # frozen while its claims are read
        raise psycopg.OperationalError("the ledger connection broke")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.faults.process.settled_claims", broken)
        with pytest.raises(psycopg.OperationalError):
            freeze_holding(worker, fault.ledger, lambda held: True)
    assert _state(worker.pid) not in ("T", "t"), "left frozen"
