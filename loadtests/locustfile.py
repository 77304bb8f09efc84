"""notepipe load test: post realistic notes and follow each one to a terminal status.

Run against a stack (``notepipe-harness stack up --env-file .notepipe/env``)::

    set -a; . .notepipe/env; set +a
    locust -f loadtests/ --headless -u 20 -r 5 -t 60s --csv reports/load --html reports/load.html

The host comes from ``--host`` or ``NOTEPIPE_API_URL``. See loadtests/README.md
for shapes, the open model, SLO exit codes and distributed runs.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Any

from _follow import (
    E2E_NAME,
    E2E_TYPE,
    FOLLOW_TYPE,
    IN_FLIGHT_KEY,
    REGISTRY,
    DeadlineMissed,
    FollowConfig,
    Followers,
)
from _notes import make_note
from _pacer import Pacer, paced_users
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

OPEN_TYPE = "open"
OPEN_NAME = "POST /notes from schedule"
SLO_EXIT_CODE = 3

log = logging.getLogger("notepipe.loadtests")


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("notepipe")
    group.add_argument(
        "--notepipe-deadline",
        type=float,
        default=0.0,
        env_var="NOTEPIPE_LOAD_DEADLINE",
        help="seconds an accepted note may take to become terminal; "
        "default: time_to_terminal(settings from NOTEPIPE_* env)",
    )
    group.add_argument(
        "--notepipe-shape",
        choices=["users", "step", "spike", "constant-rate"],
        default="users",
        env_var="NOTEPIPE_LOAD_SHAPE",
        help="load shape (loadtests/shapes.py); 'users' follows -u/-r/-t",
    )
    group.add_argument("--notepipe-rate", type=float, default=20.0, help="constant-rate: posts/s")
    group.add_argument(
        "--notepipe-concurrency", type=int, default=0, help="constant-rate: paced users (0=auto)"
    )
    group.add_argument("--notepipe-duration", type=float, default=60.0, help="spike/constant-rate")
    group.add_argument("--notepipe-step-users", type=int, default=5, help="step: users per step")
    group.add_argument("--notepipe-step-time", type=float, default=20.0, help="step: seconds")
    group.add_argument("--notepipe-steps", type=int, default=4, help="step: number of steps")
    group.add_argument("--notepipe-spike-base", type=int, default=5)
    group.add_argument("--notepipe-spike-peak", type=int, default=50)
    group.add_argument("--notepipe-spike-at", type=float, default=20.0)
    group.add_argument("--notepipe-spike-length", type=float, default=10.0)
    group.add_argument(
        "--notepipe-think", default="0.5,2", help="closed model: think time range 'min,max' s"
    )
    group.add_argument(
        "--notepipe-drain", type=float, default=30.0, help="max seconds to wait for in-flight notes"
    )
    group.add_argument("--notepipe-max-followers", type=int, default=2000, help="per process")
    group.add_argument("--notepipe-poll-max", type=float, default=5.0, help="max poll interval s")
    group.add_argument("--notepipe-seed", type=int, default=0)
    group.add_argument(
        "--notepipe-slo-p95-ms",
        type=float,
        default=0.0,
        env_var="NOTEPIPE_SLO_P95_MS",
        help="exit non-zero if the p95 end-to-end latency exceeds this (0 = off)",
    )
    group.add_argument(
        "--notepipe-slo-failure-ratio",
        type=float,
        default=-1.0,
        env_var="NOTEPIPE_SLO_FAILURE_RATIO",
        help="exit non-zero if more than this share of requests failed (-1 = off: "
        "any failure gives Locust's usual exit code 1)",
    )


def _deadline(options: Any) -> float:
    if options.notepipe_deadline > 0:
        return float(options.notepipe_deadline)
    from notepipe.deadlines import time_to_terminal
    from notepipe.settings import load_settings

    return time_to_terminal(load_settings())


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if not environment.host and os.environ.get("NOTEPIPE_API_URL"):
        environment.host = os.environ["NOTEPIPE_API_URL"]
        for user_class in environment.user_classes:
            user_class.host = environment.host


def _followers(environment: Environment, host: str) -> Followers:
    if REGISTRY.followers is None:
        options: Any = environment.parsed_options
        config = FollowConfig(
            deadline=_deadline(options),
            max_in_flight=options.notepipe_max_followers,
            poll_max=options.notepipe_poll_max,
        )
        log.info("following notes with a %.1fs deadline", config.deadline)
        REGISTRY.followers = Followers(environment, host, config)
    return REGISTRY.followers


class NoteUser(FastHttpUser):
    """Posts a note, hands it to a follower, posts the next one."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.followers = _followers(self.environment, self.host or "")
        self.rng = random.Random(hash((options.notepipe_seed, os.getpid(), id(self))))
        low, _, high = options.notepipe_think.partition(",")
        self.think = (float(low), float(high or low))
        self.pacer: Pacer | None = None
        if options.notepipe_shape == "constant-rate":
            users = paced_users(options.notepipe_rate, options.notepipe_concurrency)
            self.pacer = Pacer(options.notepipe_rate / users, self.rng)

    def wait_time(self) -> float:
        if self.pacer is not None:
            return 0.0  # the pacer's schedule is the only wait
        return self.rng.uniform(*self.think)

    @task
    def post_note(self) -> None:
        scheduled = self.pacer.wait() if self.pacer is not None else None
        size, body = make_note(self.rng)
        note_id: int | None = None
        with self.client.post("/notes", json=body, catch_response=True) as resp:
            if resp.status_code in (201, 202):
                try:
                    note_id = int(resp.json()["id"])
                except (ValueError, KeyError, TypeError):
                    resp.failure(f"HTTP {resp.status_code} without a note id")
            else:
                resp.failure(f"HTTP {resp.status_code}")
        if scheduled is not None:
            self.environment.events.request.fire(
                request_type=OPEN_TYPE,
                name=OPEN_NAME,
                response_time=(time.monotonic() - scheduled) * 1000,
                response_length=0,
                exception=None,
                context={},
            )
        if note_id is not None:
            self.followers.follow(note_id, size, len(body["content"].encode()))


@events.report_to_master.add_listener
def _report_in_flight(client_id: str, data: dict[str, Any]) -> None:
    followers = REGISTRY.followers
    data[IN_FLIGHT_KEY] = followers.in_flight if followers is not None else 0


@events.worker_report.add_listener
def _collect_in_flight(client_id: str, data: dict[str, Any]) -> None:
    if IN_FLIGHT_KEY in data:
        REGISTRY.worker_in_flight[client_id] = int(data[IN_FLIGHT_KEY])


@events.test_stop.add_listener
def _abandon(environment: Environment, **_: Any) -> None:
    """Notes still followed when the test stops are failures (the drain, if any, is over)."""
    if isinstance(environment.runner, MasterRunner):
        left = sum(REGISTRY.worker_in_flight.values())
        for _note in range(left):  # the workers' followers die with them: count them here
            environment.events.request.fire(
                request_type=E2E_TYPE,
                name=E2E_NAME,
                response_time=0,
                response_length=0,
                exception=DeadlineMissed("not terminal when the test stopped"),
                context={},
            )
        REGISTRY.worker_in_flight.clear()
        return
    followers = REGISTRY.followers
    if followers is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        followers.pool.kill(block=True, timeout=5)  # the master counts them
        return
    options: Any = environment.parsed_options
    followers.wait_idle(timeout=min(5.0, options.notepipe_drain))
    if left := followers.abandon("not terminal when the test stopped"):
        log.warning("%d note(s) not terminal when the test stopped", left)


@events.quitting.add_listener
def _slo(environment: Environment, **_: Any) -> None:
    """Turn the SLO options into the process exit code (on the master or a local runner)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    options: Any = environment.parsed_options
    p95_limit, ratio_limit = options.notepipe_slo_p95_ms, options.notepipe_slo_failure_ratio
    if p95_limit <= 0 and ratio_limit < 0:
        return
    stats = environment.stats
    entry = stats.entries.get((E2E_NAME, E2E_TYPE))
    problems: list[str] = []
    if p95_limit > 0:
        if entry is None or entry.num_requests == 0:
            problems.append("no end-to-end samples")
        else:
            p95 = entry.get_response_time_percentile(0.95)
            if p95 > p95_limit:
                problems.append(f"p95 end-to-end {p95:.0f} ms > {p95_limit:g} ms")
    ratio = stats.total.fail_ratio
    if ratio_limit >= 0 and ratio > ratio_limit:
        problems.append(f"failure ratio {ratio:.4f} > {ratio_limit:g}")
    followed = stats.entries.get(("not followed (pool full)", FOLLOW_TYPE))
    if followed is not None and followed.num_failures:
        problems.append(f"{followed.num_failures} note(s) not followed (follower pool full)")
    if problems:
        log.error("SLO violated: %s", "; ".join(problems))
        environment.process_exit_code = SLO_EXIT_CODE
    else:
        log.info("SLO met (failure ratio %.4f)", ratio)
        environment.process_exit_code = 0
