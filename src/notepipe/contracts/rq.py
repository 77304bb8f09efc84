"""The RQ boundary: Redis key names (rq 2.12's layout), job ids and worker names.

Every key is built by one function, as RQ's own ``Job.key_for``; nothing else spells
them. The pipeline reads RQ's registries raw (``ZCARD``/``ZRANGE``: RQ's registry
methods clean up as a side effect), and so does the harness.
"""

from __future__ import annotations

import re
import socket

KEY_PREFIX = "rq:"
JOB_PREFIX = "rq:job:"
WORKER_PREFIX = "rq:worker:"
#: The prefix of every notepipe worker's RQ name.
WORKER_NAME_PREFIX = "notepipe"

#: ``rq:<registry>:<queue>`` sorted sets, by the name ``notepipe status`` shows.
REGISTRIES = {
    "started": "wip",
    "scheduled": "scheduled",
    "failed": "failed",
    "finished": "finished",
    "deferred": "deferred",
    "canceled": "canceled",
}


def queue_key(queue: str) -> str:
    """The list of job ids waiting on ``queue``."""
    return f"rq:queue:{queue}"


def intermediate_key(queue: str) -> str:
    """The list a worker moves a job id to while it dequeues it (rq >= 2)."""
    return f"rq:queue:{queue}:intermediate"


def registry_key(registry: str, queue: str) -> str:
    """``registry`` is a key of :data:`REGISTRIES` (``started`` is RQ's ``wip``)."""
    return f"rq:{REGISTRIES[registry]}:{queue}"


def all_workers_key() -> str:
    """The set of the keys of every registered worker (``rq:worker:<name>``)."""
    return "rq:workers"


def workers_key(queue: str) -> str:
    """The set of the worker keys serving ``queue``."""
    return f"rq:workers:{queue}"


def worker_key(name: str) -> str:
    return f"{WORKER_PREFIX}{name}"


def job_key(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def execution_key(member: str) -> str:
    """The hash of one execution; ``member`` as in the started registry."""
    return f"rq:execution:{member}"


def started_member_job_id(member: str) -> str:
    """The job id of a started-registry member, ``<job id>:<execution id>``."""
    return member.rsplit(":", 1)[0]


# ---------------------------------------------------------------- job ids
_JOB_ID = re.compile(r"^note-(?P<note>\d+)-a(?P<attempt>\d+)$")


def job_id(note_id: int, attempt: int) -> str:
    """The RQ job id of a note's job enqueued after ``attempt`` attempts: idempotent
    (enqueueing the same note twice in the same attempt finds the same job)."""
    return f"note-{note_id}-a{attempt}"


def parse_job_id(value: str) -> tuple[int, int] | None:
    """``(note id, attempts before it)`` of a notepipe job id; None for any other id."""
    match = _JOB_ID.match(value)
    return (int(match["note"]), int(match["attempt"])) if match else None


# ---------------------------------------------------------------- worker names
_WORKER_NAME = re.compile(
    rf"^{re.escape(WORKER_NAME_PREFIX)}\.(?P<host>.+)\.(?P<pid>\d+)(?:\.r(?P<incarnation>\d+))?$"
)


def worker_name(pid: int, *, incarnation: int = 0, host: str | None = None) -> str:
    """``notepipe.<host>.<pid>``, ``.rN`` after the N-th restart of RQ's loop in the same
    process: unique while alive, and maps a ledger row to a process. A worker passes the
    ``host`` it read once at start, so every incarnation keeps the same host part."""
    base = f"{WORKER_NAME_PREFIX}.{host or socket.gethostname()}.{pid}"
    return base if incarnation == 0 else f"{base}.r{incarnation}"


def worker_pid(recorded: str | None) -> int | None:
    """The pid in a notepipe worker name (any host, any incarnation); None for any other.

    Whoever started a worker knows its pid, not the hostname it read when it started (a
    machine may be renamed while the worker runs): that pid is what names it."""
    match = _WORKER_NAME.match(recorded) if recorded is not None else None
    return int(match["pid"]) if match else None


def worker_matches(recorded: str | None, pid: int) -> bool:
    """Whether a worker name recorded in the ledger (or RQ's registry) is process ``pid``'s,
    in any incarnation of its RQ loop."""
    return worker_pid(recorded) == pid
