"""Load shapes: ``users`` (plain -u/-r/-t), ``step``, ``spike`` and ``constant-rate``.

One concrete shape class, :class:`NotepipeShape`, plays the stages of the
shape chosen with ``--notepipe-shape`` (env ``NOTEPIPE_LOAD_SHAPE``), then a
*drain* stage: no users, while the followers of the notes already accepted
wait for their terminal status (at most ``--notepipe-drain`` seconds). Without
the drain, the notes posted in the last seconds of a run - the ones that met
the fullest queue - would silently drop out of the end-to-end statistics.

``constant-rate`` is an open model: ``paced_users`` users each follow a fixed
Poisson arrival schedule (see ``_pacer.py``), so the post rate does not depend
on response times. ``step`` and ``spike`` are closed models (users with think
time), the classic Locust way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from _follow import in_flight
from _pacer import paced_users
from locust import LoadTestShape
from locust.runners import MasterRunner

SHAPES = ("users", "step", "spike", "constant-rate")
REPORT_INTERVAL = 3.5
"""A little over Locust's worker report interval: the master's view of in-flight notes."""

log = logging.getLogger("notepipe.loadtests")


@dataclass(frozen=True)
class Stage:
    """Until ``until`` seconds into the run: ``users`` users, started at ``spawn_rate``/s."""

    until: float
    users: int
    spawn_rate: float


def plan(options: Any) -> list[Stage]:
    """The stages of the shape named by ``options.notepipe_shape``; [] when open-ended."""
    shape = options.notepipe_shape
    if shape == "step":
        size, every, steps = (
            options.notepipe_step_users,
            options.notepipe_step_time,
            options.notepipe_steps,
        )
        return [
            Stage(until=every * (k + 1), users=size * (k + 1), spawn_rate=max(1.0, size))
            for k in range(steps)
        ]
    if shape == "spike":
        base, peak = options.notepipe_spike_base, options.notepipe_spike_peak
        at, length = options.notepipe_spike_at, options.notepipe_spike_length
        duration = max(options.notepipe_duration, at + length)
        return [
            Stage(until=at, users=base, spawn_rate=max(1.0, base)),
            Stage(until=at + length, users=peak, spawn_rate=max(1.0, float(peak))),
            Stage(until=duration, users=base, spawn_rate=max(1.0, float(peak))),
        ]
    if shape == "constant-rate":
        users = paced_users(options.notepipe_rate, options.notepipe_concurrency)
        return [Stage(until=options.notepipe_duration, users=users, spawn_rate=float(users))]
    if shape == "users":
        users = options.num_users or 1
        spawn_rate = options.spawn_rate or float(users)
        run_time = options.run_time
        if not run_time:
            return [Stage(until=float("inf"), users=users, spawn_rate=spawn_rate)]
        return [Stage(until=float(run_time), users=users, spawn_rate=spawn_rate)]
    raise ValueError(f"unknown --notepipe-shape {shape!r}; choose one of {', '.join(SHAPES)}")


class NotepipeShape(LoadTestShape):
    """Plays :func:`plan`'s stages, then drains the in-flight followers."""

    use_common_options = True  # the ``users`` shape honours -u, -r and -t

    def __init__(self) -> None:
        super().__init__()
        self._drain_started: float | None = None
        self._stages: list[Stage] | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self._drain_started = None
        self._stages = None

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        environment = self.runner.environment
        options: Any = environment.parsed_options
        if self._stages is None:
            self._stages = plan(options)
            log.info("notepipe shape %s: %s", options.notepipe_shape, self._stages)
        now = self.get_run_time()
        for stage in self._stages:
            if now < stage.until:
                return stage.users, stage.spawn_rate
        if self._drain_started is None:
            self._drain_started = now
        draining_for = now - self._drain_started
        left = in_flight(environment)
        distributed = isinstance(self.runner, MasterRunner)
        settled = not distributed or draining_for >= REPORT_INTERVAL
        if settled and left == 0:
            return None
        if draining_for >= options.notepipe_drain:
            log.warning("%d note(s) still not terminal after a %.0fs drain", left, draining_for)
            return None
        return 0, 100.0
