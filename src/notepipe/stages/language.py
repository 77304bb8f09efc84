"""Detect the note's language with py3langid: a naive Bayes model over byte n-grams,
shipped inside the package (nothing is downloaded), deterministic, ~0.1 ms per KiB.

The candidate languages are the 55 that the earlier detector (langdetect) knew, so
the codes a note can get did not change, except that Chinese is ``zh`` (langdetect
said ``zh-cn``/``zh-tw``). At most ``ctx.max_chars`` characters are read.
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


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(LANGUAGES)
    return identifier


def detect_language(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"code": "en"|..., "confidence": 0..1}``; ``"und"`` when undetectable."""
    text = ctx.text[: ctx.max_chars] if ctx.max_chars else ctx.text
    if _letters(text) < MIN_LETTERS:
        return {"code": UNDETERMINED, "confidence": 0.0}
    code, confidence = _identifier().classify(text)
    return {"code": str(code), "confidence": round(float(confidence), 4)}


def _warm_up() -> None:
    _identifier()  # loads the model (~0.3 s on an idle machine)


detect_language.warm_up = _warm_up  # type: ignore[attr-defined]
