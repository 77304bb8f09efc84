"""Follow accepted notes to a terminal status and report end-to-end latency to Locust.

Each accepted note gets a *follower*: a greenlet in a bounded per-process pool,
so a user's next post never waits on polling. Followers poll ``GET /notes/{id}``
with exponential backoff (first poll after ``poll_first`` s, x1.6, capped at
``poll_max`` s, default 5), through their own HTTP session (these GETs show up in the HTTP
stats as ``/notes/[id]``).

The latency reported is the ledger's ``completed_at - created_at`` (the terminal
time; set for ``failed`` too), so polling granularity does not distort it. It
is fired as Locust request type ``e2e``, name ``accepted->terminal``. A note
that ends ``failed``, takes longer than the deadline, or is not terminal when
its follower gives up counts as a failure.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gevent  # type: ignore[import-untyped]
import gevent.pool  # type: ignore[import-untyped]
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

E2E_TYPE = "e2e"
E2E_NAME = "accepted->terminal"
FOLLOW_TYPE = "follow"
POLL_NAME = "/notes/[id]"
BACKOFF = 1.6

log = logging.getLogger("notepipe.loadtests")


class NoteFailed(Exception):
    """The note reached ``failed``."""


class DeadlineMissed(Exception):
    """The note was terminal too late, or not terminal when its follower gave up."""


class NotFollowed(Exception):
    """The follower pool was full: the note was accepted but nobody is watching it."""


@dataclass(frozen=True)
class FollowConfig:
    deadline: float
    """Seconds an accepted note may take to become terminal (``time_to_terminal``)."""
    max_in_flight: int = 2000
    poll_first: float = 0.25
    poll_max: float = 5.0
    connections: int = 20
    give_up_slack: float = 5.0
    """Extra seconds a follower keeps polling past the deadline (clock skew, last poll)."""


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Followers:
    """The per-process pool of followers (one per Locust process; see :func:`install`)."""

    def __init__(self, environment: Environment, base_url: str, config: FollowConfig) -> None:
        self.environment = environment
        self.config = config
        self.pool = gevent.pool.Pool(config.max_in_flight)
        self.session = FastHttpSession(
            base_url,
            request_event=environment.events.request,
            user=None,
            concurrency=config.connections,
            network_timeout=10.0,
            connection_timeout=5.0,
        )
        self.started = 0
        self.finished = 0

    @property
    def in_flight(self) -> int:
        return len(self.pool)

    def follow(self, note_id: int, size: str, content_bytes: int) -> bool:
        """Start following ``note_id``; never blocks. False (and a failure) if the pool is full."""
        if self.pool.full():
            self._fire(FOLLOW_TYPE, "not followed (pool full)", 0, NotFollowed(size))
            return False
        self.started += 1
        self.pool.spawn(self._run, note_id, content_bytes)
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every follower to finish; True if none is left."""
        return bool(self.pool.join(timeout=timeout))

    def abandon(self, reason: str) -> int:
        """Kill the followers still running and count each as an ``e2e`` failure."""
        left = len(self.pool)
        self.pool.kill(block=True, timeout=5)
        for _ in range(left):
            self._fire(E2E_TYPE, E2E_NAME, 0, DeadlineMissed(reason))
        return left

    def _fire(self, request_type: str, name: str, ms: float, exc: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=ms,
            response_length=0,
            exception=exc,
            context={},
        )

    def _poll(self, note_id: int) -> dict[str, Any] | None:
        with self.session.get(f"/notes/{note_id}", name=POLL_NAME, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                return None
            try:
                body: dict[str, Any] = json.loads(resp.content or b"{}")
            except ValueError:
                resp.failure("not JSON")
                return None
            resp.success()
            return body

    def _run(self, note_id: int, content_bytes: int) -> None:
        cfg = self.config
        give_up = time.monotonic() + cfg.deadline + cfg.give_up_slack
        delay = cfg.poll_first
        last_status = "unknown"
        try:
            while True:
                gevent.sleep(max(0.0, min(delay, give_up - time.monotonic())))
                body = self._poll(note_id)
                if body is not None:
                    last_status = str(body.get("status"))
                    if body.get("terminal"):
                        self._report(body, content_bytes)
                        return
                if time.monotonic() >= give_up:
                    self._fire(
                        E2E_TYPE,
                        E2E_NAME,
                        cfg.deadline * 1000,
                        DeadlineMissed(f"not terminal within {cfg.deadline:g}s"),
                    )
                    log.warning("note %s still %s after %.0fs", note_id, last_status, cfg.deadline)
                    return
                delay = min(delay * BACKOFF, cfg.poll_max)
        finally:
            self.finished += 1

    def _report(self, body: dict[str, Any], content_bytes: int) -> None:
        created, terminal = body.get("created_at"), body.get("completed_at")
        if not created or not terminal:
            self._fire(E2E_TYPE, E2E_NAME, 0, DeadlineMissed("terminal without completed_at"))
            return
        seconds = (_ts(terminal) - _ts(created)).total_seconds()
        exc: Exception | None = None
        if body.get("status") == "failed":
            exc = NoteFailed("note failed")
        elif seconds > self.config.deadline:
            exc = DeadlineMissed(f"terminal after time_to_terminal ({self.config.deadline:g}s)")
        self.environment.events.request.fire(
            request_type=E2E_TYPE,
            name=E2E_NAME,
            response_time=seconds * 1000,
            response_length=content_bytes,
            exception=exc,
            context={"note_id": body.get("id"), "attempt": body.get("attempt")},
        )


class _Registry:
    """Per-process state: this process's followers; on a master, what workers report."""

    def __init__(self) -> None:
        self.followers: Followers | None = None
        self.worker_in_flight: dict[str, int] = {}


REGISTRY = _Registry()
IN_FLIGHT_KEY = "notepipe_in_flight"


def in_flight(environment: Environment) -> int:
    """Notes accepted and not yet terminal: this process's, or (on a master) all workers'."""
    from locust.runners import MasterRunner

    if isinstance(environment.runner, MasterRunner):
        return sum(REGISTRY.worker_in_flight.values())
    followers = REGISTRY.followers
    return followers.in_flight if followers is not None else 0
