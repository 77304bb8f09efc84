"""A fault as data: :class:`FaultSpec`, the unit of a replayable schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import HarnessConfigError


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault, as data: start ``at`` seconds into the run, heal after ``duration``.

    ``kind`` names a fault class (:data:`harness.faults.FAULT_KINDS`); ``target`` and
    ``params`` are validated by that class.
    """

    kind: str
    at: float
    duration: float = 0.0
    target: str = "any"
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at,
            "duration": self.duration,
            "target": self.target,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultSpec:
        unknown = set(data) - {"kind", "at", "duration", "target", "params"}
        if unknown:
            raise HarnessConfigError(f"fault spec has unknown keys {sorted(unknown)}: {dict(data)}")
        spec = cls(
            kind=str(data["kind"]),
            at=float(data["at"]),
            duration=float(data.get("duration", 0.0)),
            target=str(data.get("target", "any")),
            params=dict(data.get("params", {})),
        )
        from harness.faults.base import validate_spec  # the classes register on import

        validate_spec(spec)
        return spec
