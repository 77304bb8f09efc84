"""The worst-case time for an accepted note to reach a terminal status.

With ``A = 1 + retry_max`` attempts, each attempt k (1-based) can cost at most:

* **wait**: before it starts — attempt 1: ``enqueue_grace + reconcile_interval``
  (the API could not enqueue; the reconciler picks the note up) ; attempt k > 1:
  ``retry_interval(k-1) + enqueue_grace + reconcile_interval`` (the retry is due,
  then the reconciler re-enqueues it if RQ's own retry was lost);
* **run**: ``job_timeout`` (RQ's timeout stops the attempt);
* **detect**: if the attempt died instead of failing, its lease expires at most
  ``lease_ttl`` after the last renewal, plus ``lease_grace``, plus one
  ``reconcile_interval`` until the reconciler sees it;
* **dispatch_slack**: queueing, scheduling and database latency per attempt.

``time_to_terminal = Σ_k (wait_k + job_timeout + lease_ttl + lease_grace
+ reconcile_interval + dispatch_slack)``. It assumes an idle worker is available
(a saturated queue adds its backlog), and counts from the later of the note's
acceptance and the end of the last fault.
"""

from __future__ import annotations

from notepipe.settings import Settings


def attempt_budget(settings: Settings, attempt: int) -> float:
    """Worst-case seconds spent on attempt ``attempt`` (1-based), waiting included."""
    wait = settings.enqueue_grace + settings.reconcile_interval
    if attempt > 1:
        wait += settings.retry_interval(attempt - 1)
    detect = settings.lease_ttl + settings.lease_grace + settings.reconcile_interval
    return wait + settings.job_timeout + detect + settings.dispatch_slack


def time_to_terminal(settings: Settings) -> float:
    """Worst-case seconds from acceptance to ``completed``/``failed`` (see module doc)."""
    return sum(attempt_budget(settings, k) for k in range(1, settings.max_attempts + 1))
