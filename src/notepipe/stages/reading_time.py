"""Estimate reading time at a fixed words-per-minute rate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext

WORDS_PER_MINUTE = 230


def reading_time(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"words", "minutes", "seconds"}``; minutes to 2 decimals, seconds rounded."""
    words = len(ctx.text.split())
    minutes = words / WORDS_PER_MINUTE
    return {"words": words, "minutes": round(minutes, 2), "seconds": round(minutes * 60)}
