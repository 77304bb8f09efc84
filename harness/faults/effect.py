"""What a fault hit: its :class:`Effect`, the evidence that it bit.

Every fault fills its effect while it acts (``inject``/``heal``): the pid, note and
attempt a kill interrupted, the connections a proxy outage refused, the jobs a Redis
restart lost. After the run its class adds what the history shows (``confirm``): the
interrupted attempts recovered, the lost jobs re-enqueued, errors the pipeline saw in the
window. A fault that failed to inject or hit nothing is *missed*, and a run with a missed
fault can never be ``valid`` (see :func:`harness.faults.proof.prove_faults`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import HarnessError


class FaultMissed(HarnessError):
    """A fault could not hit what it aims at (no busy worker by its deadline, no horse to
    kill, a service that did not go down, …). The message says what was looked for."""


@dataclass
class Effect:
    """Evidence of one fault. ``hit`` is ``None`` until the fault judged itself; ``missed``
    says why it hit nothing; ``evidence`` is JSON-able (pids, notes, counts, probes)."""

    hit: bool | None = None
    summary: str = ""
    missed: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def bit(self, summary: str, **evidence: Any) -> None:
        self.hit, self.summary, self.missed = True, summary, None
        self.evidence.update(evidence)

    def miss(self, reason: str, **evidence: Any) -> None:
        self.hit, self.summary, self.missed = False, f"missed: {reason}", reason
        self.evidence.update(evidence)

    def note(self, **evidence: Any) -> None:
        """Add evidence without judging (e.g. what the history showed after the run)."""
        self.evidence.update(evidence)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
