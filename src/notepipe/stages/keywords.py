"""Extract keywords with YAKE, using the detected language's stopwords when known."""

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

# langdetect codes whose YAKE stopword list goes by another name.
_YAKE_CODES = {"cs": "cz", "zh-cn": "zh", "zh-tw": "zh", "und": "noLang"}


@functools.lru_cache(maxsize=32)
def _extractor(language: str, top: int) -> Any:
    import yake

    # YAKE loads the stopword list here and falls back to its language-neutral
    # list when it has none for ``language``.
    return yake.KeywordExtractor(lan=language, n=MAX_NGRAM, top=top)


def _language(ctx: StageContext) -> str:
    result = ctx.results.get(LANGUAGE_RESULT_KEY)
    code = result.get("code") if isinstance(result, Mapping) else None
    if not isinstance(code, str) or not code:
        return DEFAULT_LANGUAGE
    return _YAKE_CODES.get(code, code)


def extract_keywords(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"language", "keywords": [{"keyword", "score"}, ...]}``, best first.

    YAKE scores are "lower is more relevant".
    """
    language = _language(ctx)
    pairs = _extractor(language, TOP_N).extract_keywords(ctx.text) if ctx.text else []
    keywords = [
        {"keyword": str(keyword), "score": round(float(score), 6)}
        for keyword, score in pairs
        if math.isfinite(float(score))
    ]
    return {"language": language, "keywords": keywords}


def _warm_up() -> None:
    _extractor(DEFAULT_LANGUAGE, TOP_N)  # imports yake (numpy, networkx: ~0.4 s)


extract_keywords.warm_up = _warm_up  # type: ignore[attr-defined]
