"""Detect the note's language with langdetect, deterministically."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext

UNDETERMINED = "und"
"""ISO 639-2 code for text whose language cannot be told."""
MIN_LETTERS = 12
"""Texts with fewer letters than this are too short to classify reliably."""


def _letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def detect_language(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"code": "en"|..., "confidence": 0..1}``; ``"und"`` when undetectable."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    undetermined = {"code": UNDETERMINED, "confidence": 0.0}
    if _letters(ctx.text) < MIN_LETTERS:
        return undetermined
    # langdetect samples features at random; a fixed seed makes a note's answer repeatable.
    DetectorFactory.seed = 0
    try:
        candidates = detect_langs(ctx.text)
    except LangDetectException:
        return undetermined
    if not candidates:
        return undetermined
    best = candidates[0]
    return {"code": str(best.lang), "confidence": round(float(best.prob), 4)}


def _warm_up() -> None:
    from langdetect.detector_factory import init_factory

    init_factory()  # loads the language profiles (~0.5 s)


detect_language.warm_up = _warm_up  # type: ignore[attr-defined]
