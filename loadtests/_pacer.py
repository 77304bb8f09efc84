"""An open-model pacer: arrivals on a schedule that does not wait for responses.

Locust users are a *closed* model: a user sends its next request only after
the previous one returned, so a slow system receives fewer requests and its
slowness is under-sampled (coordinated omission). Here every paced user owns a
Poisson arrival schedule fixed in advance (exponential gaps with mean
``users / rate``); the superposition of ``users`` such schedules is a Poisson
stream of ``rate`` posts per second, whatever the response times.

A user that falls behind (its previous POST took longer than the gap) sends at
once, without skipping its missed arrivals, and the lag is reported. The POST's
latency *measured from its scheduled arrival* (wrk2's correction) is reported
as request type ``open``: it includes the time the request waited to be sent.

Why not the harness's generator (``harness/load.py``, used by the scenarios and the
capacity sweep): that one dispatches from a thread into a thread pool; here each
Locust user is a gevent greenlet that Locust schedules, counts and reports, so the
pacing has to live inside the user (``gevent.sleep``).
"""

from __future__ import annotations

import random
import time

import gevent  # type: ignore[import-untyped]


class Pacer:
    """A Poisson arrival schedule of ``rate`` arrivals per second (for one user)."""

    def __init__(self, rate: float, rng: random.Random, start: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"a pacer needs a positive rate, got {rate}")
        self.rate = rate
        self.rng = rng
        now = time.monotonic() if start is None else start
        self.next_at = now + rng.expovariate(rate)

    def wait(self) -> float:
        """Sleep until the next scheduled arrival; return its (monotonic) scheduled time."""
        scheduled = self.next_at
        delay = scheduled - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        self.next_at = scheduled + self.rng.expovariate(self.rate)
        return scheduled


def paced_users(rate: float, concurrency: int) -> int:
    """How many paced users carry ``rate`` posts/s: ``concurrency``, or enough that each
    user's mean gap (``users / rate``) is at least 0.2 s, so a POST taking up to ~200 ms
    keeps each user on schedule; never fewer than 4."""
    if concurrency > 0:
        return concurrency
    return max(4, int(rate / 5 + 0.999))
