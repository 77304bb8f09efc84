"""A chaos enrichment stage: a note's content asks for slowness, failures or crashes.

The harness adds :data:`CHAOS_STAGE` to ``NOTEPIPE_STAGES``; production code has no
test hooks. Directives are written in the content, one per bracket, run in order:

``[chaos:sleep=3.5]``       sleep 3.5 s (wall clock; interruptible by RQ's job timeout)
``[chaos:cpu=1.5]``         burn 1.5 s of CPU in a pure-Python loop
``[chaos:raise]``           raise :class:`ChaosError` on every attempt (a poison note)
``[chaos:raise-until=2]``   raise while the attempt number is <= 2, then go on
``[chaos:exit]``            ``os._exit(1)``: the work-horse dies without cleanup

Content without directives is a no-op returning ``{}``. A malformed directive
raises :class:`ChaosDirectiveError` saying what is wrong and the accepted forms.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from notepipe.stages import StageContext

__all__ = [
    "CHAOS_STAGE",
    "LONG_NOTE",
    "LONG_NOTE_SECONDS",
    "ChaosDirective",
    "ChaosDirectiveError",
    "ChaosError",
    "chaos",
    "directive",
    "parse_directives",
]

CHAOS_STAGE = "harness.chaos_stage:chaos"
"""Import path to append to ``NOTEPIPE_STAGES``."""

LONG_NOTE_SECONDS = 6.0
LONG_NOTE = f"[chaos:sleep={LONG_NOTE_SECONDS}]"
"""A healthy *long* note: its attempt lasts three lease periods of the scenario settings
(``lease_ttl`` 2 s), shorter than their ``job_timeout`` (8 s). It completes on attempt 1
only if the heartbeat renews the lease; the checker expects exactly that."""

SLEEP_SLICE = 0.05
"""Sleep in slices this long, so any signal handler gets to run promptly."""

_OPENING = re.compile(r"\[chaos:", re.IGNORECASE)
_DIRECTIVE = re.compile(r"\[chaos:([^\[\]\s]*)\]", re.IGNORECASE)
_FORMS = (
    "[chaos:sleep=SECONDS], [chaos:cpu=SECONDS], [chaos:raise], [chaos:raise-until=N], [chaos:exit]"
)
_KINDS_WITH_VALUE = {"sleep": float, "cpu": float, "raise-until": int}
_KINDS_WITHOUT_VALUE = frozenset({"raise", "exit"})


class ChaosError(HarnessError):
    """Raised on purpose by a ``[chaos:raise]`` or ``[chaos:raise-until=N]`` directive."""


class ChaosDirectiveError(HarnessError, ValueError):
    """A ``[chaos:...]`` directive in a note's content is malformed."""


@dataclass(frozen=True)
class ChaosDirective:
    kind: str
    value: float | None = None

    def __str__(self) -> str:
        if self.value is None:
            return f"[chaos:{self.kind}]"
        value = int(self.value) if self.kind == "raise-until" else self.value
        return f"[chaos:{self.kind}={value}]"


def _parse_one(body: str) -> ChaosDirective:
    kind, has_value, raw = body.partition("=")
    kind = kind.lower()
    if kind in _KINDS_WITHOUT_VALUE:
        if has_value:
            raise ChaosDirectiveError(
                f"[chaos:{body}]: '{kind}' takes no value; use [chaos:{kind}]"
            )
        return ChaosDirective(kind)
    if kind not in _KINDS_WITH_VALUE:
        raise ChaosDirectiveError(
            f"[chaos:{body}]: unknown directive {kind!r}; use one of {_FORMS}"
        )
    if not has_value or not raw:
        raise ChaosDirectiveError(f"[chaos:{body}]: '{kind}' needs a value, e.g. [chaos:{kind}=2]")
    convert = _KINDS_WITH_VALUE[kind]
    try:
        value = float(convert(raw))
    except ValueError:
        expected = "an integer" if convert is int else "a number of seconds"
        raise ChaosDirectiveError(
            f"[chaos:{body}]: {raw!r} is not {expected}; e.g. [chaos:{kind}=2]"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ChaosDirectiveError(f"[chaos:{body}]: the value must be finite and >= 0")
    return ChaosDirective(kind, value)


def parse_directives(content: str) -> list[ChaosDirective]:
    """Return the directives in ``content`` in order; raise on any malformed one."""
    directives = []
    for opening in _OPENING.finditer(content):
        match = _DIRECTIVE.match(content, opening.start())
        if match is None:
            snippet = content[opening.start() : opening.start() + 40]
            raise ChaosDirectiveError(
                f"malformed chaos directive at offset {opening.start()}: {snippet!r}; "
                f"write one directive per bracket, no spaces: {_FORMS}"
            )
        directives.append(_parse_one(match.group(1)))
    return directives


def directive(kind: str, value: float | None = None) -> str:
    """Build a directive string for a scenario's note content, e.g. ``directive("sleep", 2)``."""
    body = kind if value is None else f"{kind}={value}"
    return str(_parse_one(body))


def _sleep(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(SLEEP_SLICE, remaining))


def _burn_cpu(seconds: float) -> int:
    deadline = time.thread_time() + seconds
    spins = 0
    while time.thread_time() < deadline:
        for i in range(10_000):
            spins ^= i
    return spins


def chaos(ctx: StageContext) -> Mapping[str, Any]:
    """Apply the note's chaos directives in order; ``{}`` when there are none."""
    directives = parse_directives(ctx.content)
    if not directives:
        return {}
    applied: list[str] = []
    for item in directives:
        if item.kind == "sleep":
            _sleep(item.value or 0.0)
        elif item.kind == "cpu":
            _burn_cpu(item.value or 0.0)
        elif item.kind == "raise":
            raise ChaosError(f"note {ctx.note_id} attempt {ctx.attempt}: {item} asked to fail")
        elif item.kind == "raise-until":
            if ctx.attempt <= (item.value or 0):
                raise ChaosError(
                    f"note {ctx.note_id} attempt {ctx.attempt}: {item} asked to fail "
                    f"until attempt {int(item.value or 0)}"
                )
        elif item.kind == "exit":
            os._exit(1)
        applied.append(str(item))
    return {"applied": applied}
