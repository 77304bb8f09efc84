"""Deadlines with polling: the only way the harness waits for anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline; ``last_error`` is the last transient
    error the condition raised, if any."""

    def __init__(self, message: str, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    *,
    describe: str,
    interval: float = 0.05,
    max_interval: float = 0.5,
    transient: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Errors listed in ``transient`` count as "not yet". On timeout raise
    :class:`WaitTimeout` naming ``describe`` and the last transient error.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    delay = interval
    while True:
        try:
            result = predicate()
        except transient as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise WaitTimeout(
                f"timed out after {timeout:.1f}s waiting for {describe}{detail}", last_error
            )
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, max_interval)
