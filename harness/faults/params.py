"""Small checks the fault classes use to validate their own ``params``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from harness.errors import HarnessConfigError


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_positive_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


def refuse_unknown(kind: str, params: Mapping[str, Any], known: Iterable[str]) -> None:
    allowed = sorted(known)
    unknown = set(params) - set(allowed)
    if unknown:
        hint = f"use {', '.join(allowed)}" if allowed else "this fault takes no params"
        raise HarnessConfigError(f"{kind}: unknown params {sorted(unknown)}; {hint}")
