"""What a note's content asks of the pipeline: the chaos stage's directives, read by the checker.

The harness writes ``[chaos:...]`` directives into note content (see
:mod:`harness.chaos_stage`); the checker reads the content back from the ledger and
derives, independently of the run, for each attempt the ways it may end
(:class:`EndCause`) and how many worker-seconds the note asks for.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.chaos_stage import ChaosDirective, ChaosDirectiveError, parse_directives
from notepipe.models import EndCause

#: Work that reaches this share of ``job_timeout`` may time out (scheduling, other stages).
TIMEOUT_RISK_SHARE = 0.75
#: CPU burnt on a contended machine takes up to this many times its CPU seconds in wall time.
CPU_WALL_FACTOR = 3.0


@dataclass(frozen=True)
class Expectation:
    """The directives of one note's content (``malformed`` when they do not parse)."""

    directives: tuple[ChaosDirective, ...] = ()
    malformed: bool = False

    @classmethod
    def of(cls, content: str | None) -> Expectation:
        if not content:
            return cls()
        try:
            return cls(tuple(parse_directives(content)))
        except ChaosDirectiveError:
            return cls(malformed=True)

    @property
    def healthy(self) -> bool:
        """No directive asks any attempt to fail, die or time out."""
        return not self.malformed and all(d.kind in ("sleep", "cpu") for d in self.directives)

    def work_s(self, job_timeout: float) -> float:
        """Seconds of work one attempt does before it ends (at most ``job_timeout``)."""
        total = 0.0
        for d in self.directives:
            if d.kind in ("sleep", "cpu"):
                total += d.value or 0.0
            elif d.kind in ("raise", "exit"):
                break
        return min(total, job_timeout)

    def ends(self, attempt: int, job_timeout: float) -> frozenset[EndCause]:
        """The causes attempt ``attempt`` (1-based) may end with, on a healthy pipeline."""
        if self.malformed:
            return frozenset({EndCause.ERROR})
        certain = 0.0  # wall seconds surely spent (sleep, and CPU seconds at least)
        wall = 0.0  # wall seconds possibly spent (CPU on a contended machine)
        risky = False
        for d in self.directives:
            if d.kind in ("sleep", "cpu"):
                seconds = d.value or 0.0
                certain += seconds
                wall += seconds * (CPU_WALL_FACTOR if d.kind == "cpu" else 1.0)
                if certain >= job_timeout:
                    return frozenset({EndCause.TIMEOUT})
                risky = risky or wall >= TIMEOUT_RISK_SHARE * job_timeout
                continue
            maybe = {EndCause.TIMEOUT} if risky else set()
            if d.kind == "raise":
                return frozenset({EndCause.ERROR, *maybe})
            if d.kind == "raise-until" and attempt <= int(d.value or 0):
                return frozenset({EndCause.ERROR, *maybe})
            if d.kind == "exit":
                return frozenset({EndCause.LEASE_EXPIRED, *maybe})
        return frozenset({EndCause.COMPLETED, *({EndCause.TIMEOUT} if risky else set())})

    def attempts_asked(self, job_timeout: float, max_attempts: int) -> int:
        """How many attempts the content makes a healthy pipeline run (up to the budget)."""
        for k in range(1, max_attempts + 1):
            if EndCause.COMPLETED in self.ends(k, job_timeout):
                return k
        return max_attempts

    def demand_s(self, job_timeout: float, max_attempts: int) -> float:
        """Worker-seconds the note asks for: its work per attempt times the attempts it needs."""
        return self.work_s(job_timeout) * self.attempts_asked(job_timeout, max_attempts)
