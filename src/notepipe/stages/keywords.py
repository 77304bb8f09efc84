"""Extract keywords with YAKE (the yake-rust port: the same scores as the Python package,
several times faster), using the detected language's stopwords when it has them.

At most ``ctx.max_chars`` characters are read.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext

TOP_N = 10
"""How many keywords a note gets at most."""
MAX_NGRAM = 3
DEFAULT_LANGUAGE = "en"
"""Stopword list used when no language stage ran before this one."""
LANGUAGE_RESULT_KEY = "detect_language"
NO_LANGUAGE = "noLang"
"""Reported when YAKE has no stopword list for the language (no stopwords are used)."""

#: Languages YAKE ships stopwords for, under YAKE's own codes.
YAKE_LANGUAGES = frozenset(
    [
        "ar",
        "bg",
        "br",
        "cz",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "fa",
        "fi",
        "fr",
        "hi",
        "hr",
        "hu",
        "hy",
        "id",
        "it",
        "ja",
        "lt",
        "lv",
        "nl",
        "no",
        "pl",
        "pt",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "tr",
        "uk",
        "zh",
    ]
)
# Detected codes whose YAKE stopword list goes by another name.
_YAKE_CODES = {"cs": "cz", "zh-cn": "zh", "zh-tw": "zh"}


@functools.lru_cache(maxsize=64)
def _extractor(language: str) -> Any:
    import yake_rust

    if language in YAKE_LANGUAGES:
        return yake_rust.Yake(language=language, ngrams=MAX_NGRAM)
    return yake_rust.Yake(stopwords=set(), ngrams=MAX_NGRAM)


def _language(ctx: StageContext) -> str:
    result = ctx.results.get(LANGUAGE_RESULT_KEY)
    code = result.get("code") if isinstance(result, Mapping) else None
    if not isinstance(code, str) or not code:
        return DEFAULT_LANGUAGE
    code = _YAKE_CODES.get(code, code)
    return code if code in YAKE_LANGUAGES else NO_LANGUAGE


def extract_keywords(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"language", "keywords": [{"keyword", "score"}, ...]}``, best first.

    YAKE scores are "lower is more relevant".
    """
    language = _language(ctx)
    text = ctx.text[: ctx.max_chars] if ctx.max_chars else ctx.text
    pairs = _extractor(language).get_n_best(text, n=TOP_N) if text.strip() else []
    keywords = [
        {"keyword": str(keyword), "score": round(float(score), 6)}
        for keyword, score in pairs
        if math.isfinite(float(score))
    ]
    return {"language": language, "keywords": keywords}


def _warm_up() -> None:
    # The first extraction initialises yake-rust's lazy state (~12 ms): do it here, once,
    # not in every forked horse.
    _extractor(DEFAULT_LANGUAGE).get_n_best("Warm up the keyword extractor once.", n=TOP_N)


extract_keywords.warm_up = _warm_up  # type: ignore[attr-defined]
