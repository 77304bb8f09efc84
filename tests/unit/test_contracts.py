"""The contract modules both sides import: RQ keys, job ids and worker names."""

from __future__ import annotations

import socket

import pytest

from notepipe.contracts import rq


def test_job_ids_round_trip_and_foreign_ids_are_not_ours() -> None:
    assert rq.job_id(12, 3) == "note-12-a3"
    assert rq.parse_job_id(rq.job_id(12, 3)) == (12, 3)
    for foreign in ("note-x-a1", "note-1", "other-1-a0", "note-1-a0:exec", ""):
        assert rq.parse_job_id(foreign) is None


def test_keys_follow_rq_212() -> None:
    assert rq.queue_key("q") == "rq:queue:q"
    assert rq.intermediate_key("q") == "rq:queue:q:intermediate"
    assert rq.registry_key("started", "q") == "rq:wip:q"
    assert rq.registry_key("scheduled", "q") == "rq:scheduled:q"
    assert rq.workers_key("q") == "rq:workers:q"
    assert rq.all_workers_key() == "rq:workers"
    assert rq.job_key("note-1-a0") == "rq:job:note-1-a0"
    assert rq.started_member_job_id("note-1-a0:6b1e") == "note-1-a0"
    with pytest.raises(KeyError):
        rq.registry_key("wip", "q")  # the registry's name, not RQ's spelling


def test_worker_names_and_incarnations() -> None:
    name = rq.worker_name(42, host="h")
    assert name == "notepipe.h.42"
    assert rq.worker_name(42, incarnation=2, host="h") == "notepipe.h.42.r2"
    assert rq.worker_name(7) == f"notepipe.{socket.gethostname()}.7"
    assert rq.worker_matches(name, 42)
    assert rq.worker_matches(rq.worker_name(42, incarnation=1, host="h"), 42)
    assert not rq.worker_matches("notepipe.h.421", 42)
    assert not rq.worker_matches("notepipe.h.42.r", 42)
    assert not rq.worker_matches("other.h.42", 42)
    assert not rq.worker_matches(None, 42)


@pytest.mark.parametrize("host", ["h", "vm", "ci-7.example.org", "10.0.0.42", "x.r3", "a.5"])
@pytest.mark.parametrize("incarnation", [0, 1, 12])
def test_a_worker_is_known_by_its_pid_whatever_the_host_was_called(
    host: str, incarnation: int
) -> None:
    # The host part is the hostname when the worker started; the machine may have been
    # renamed since, so the harness matches a recorded name by the pid that ends it.
    name = rq.worker_name(4242, incarnation=incarnation, host=host)
    assert rq.worker_pid(name) == 4242
    assert rq.worker_matches(name, 4242)
    assert not rq.worker_matches(name, 424)
    assert not rq.worker_matches(name, 42)


def test_span_outcomes_include_unknown_and_the_harness_reads_the_same_names() -> None:
    from harness import spans as harness_spans
    from notepipe.contracts import spans

    assert [o.value for o in spans.Outcome] == [
        "completed",
        "retry",
        "failed",
        "fenced",
        "skipped",
        "unknown",
    ]
    assert harness_spans.ATTEMPT_SPAN == spans.ATTEMPT_SPAN == "note.attempt"
    assert harness_spans.ATTR_OUTCOME == spans.NOTE_OUTCOME == "note.outcome"
    assert harness_spans.ATTR_LEASE_UNTIL == spans.NOTE_LEASE_UNTIL
