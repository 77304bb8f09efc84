"""The fault base class and the registry of fault kinds.

Every fault class names its ``kind`` as a class attribute; defining the class registers
it in :data:`FAULT_KINDS` (no switch on the kind anywhere). A class validates its own
spec in :meth:`Fault.validate` — the times here, the target in :meth:`Fault.check_target`
and the params in :meth:`Fault.check_params` — so a bad schedule is refused before
anything starts.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg

from harness.errors import HarnessConfigError
from harness.faults.effect import Effect
from harness.faults.spec import FaultSpec

if TYPE_CHECKING:
    from harness.checker import History
    from harness.stack import PipelineStack


@dataclass(frozen=True)
class FaultRun:
    """What a fault's class reads after the run to confirm its effect: its window, the
    run's history and the client's operations."""

    start: datetime
    end: datetime
    history: History
    client_ops: Sequence[Mapping[str, Any]]


#: How long a fault waits for a direct ledger connection (the harness's own, not through
#: the proxy): a fault never runs while an earlier one still pauses PostgreSQL (the
#: schedule runner heals what is due before the next inject), so this is a plain bound.
LEDGER_CONNECT_TIMEOUT_S = 5

#: ``kind`` → fault class, filled as the classes are defined.
FAULT_KINDS: dict[str, type[Fault]] = {}


class Fault:
    """One fault against one target of a :class:`~harness.stack.PipelineStack`.

    ``inject`` acts; ``heal`` undoes (the schedule calls it in ``finally``); ``target``
    names what was hit once injected, and ``effect`` holds the evidence that it bit: each
    class judges itself (``effect.bit(...)`` or ``effect.miss(...)``, or raises
    :class:`~harness.faults.effect.FaultMissed`). After the run, :meth:`confirm` adds what
    the history shows.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if kind:
            if kind in FAULT_KINDS:
                raise TypeError(f"fault kind {kind!r} defined twice: {FAULT_KINDS[kind]} and {cls}")
            FAULT_KINDS[kind] = cls

    def __init__(self, stack: PipelineStack, spec: FaultSpec, rng: random.Random) -> None:
        self.stack = stack
        self.spec = spec
        self.rng = rng
        self.target = spec.target
        self.effect = Effect()

    # ------------------------------------------------------------------ validation
    @classmethod
    def validate(cls, spec: FaultSpec) -> None:
        """Refuse a bad spec for this class, saying how to fix it."""
        if spec.at < 0 or spec.duration < 0:
            raise HarnessConfigError(f"fault {spec.kind}: 'at' and 'duration' must be >= 0 seconds")
        cls.check_target(spec.target)
        cls.check_params(spec.params)

    @classmethod
    def check_target(cls, target: str) -> None:
        """Any target by default; subclasses narrow it."""

    @classmethod
    def check_params(cls, params: Any) -> None:
        """Any params by default; subclasses check theirs."""

    # ------------------------------------------------------------------ the ledger
    @contextlib.contextmanager
    def ledger(self) -> Iterator[psycopg.Connection[Any]]:
        """The harness's own connection to the stack's ledger (direct, autocommit)."""
        observer = self.stack.direct_settings
        if observer is None:
            raise HarnessConfigError(f"{self.kind} needs a started stack")
        with psycopg.connect(
            observer.database_dsn, connect_timeout=LEDGER_CONNECT_TIMEOUT_S, autocommit=True
        ) as conn:
            yield conn

    # ------------------------------------------------------------------ acting
    def inject(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo the fault; a no-op for faults that heal themselves."""

    # ------------------------------------------------------------------ after the run
    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        """Add to ``effect`` what the run's history shows about this fault (a no-op here)."""


def fault_class(kind: str) -> type[Fault]:
    try:
        return FAULT_KINDS[kind]
    except KeyError:
        raise HarnessConfigError(
            f"unknown fault kind {kind!r}; valid kinds: {', '.join(sorted(FAULT_KINDS))}"
        ) from None


def validate_spec(spec: FaultSpec) -> None:
    """Refuse a bad fault before anything starts, saying how to fix it."""
    fault_class(spec.kind).validate(spec)


def build_fault(stack: PipelineStack, spec: FaultSpec, rng: random.Random) -> Fault:
    cls = fault_class(spec.kind)
    cls.validate(spec)
    return cls(stack, spec, rng)
