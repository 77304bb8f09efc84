"""Normalize the note's text: Unicode NFKC, no control characters, single spaces."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext

_WHITESPACE = re.compile(r"\s+")
# Invisible characters that only get in the way of matching; other format characters
# (ZWJ in emoji, ZWNJ in Persian, bidi marks) carry meaning and are kept.
_INVISIBLE = frozenset("\u200b\u2060\ufeff")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs"})  # control characters, lone surrogates


def normalize_text(text: str) -> str:
    """NFKC-normalize ``text``, drop control characters, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    # Whitespace controls (\t, \n, \r, ...) become spaces; other controls are dropped.
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace()
        or (ch not in _INVISIBLE and unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    )
    return _WHITESPACE.sub(" ", "".join(kept)).strip()


def normalize(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"text", "chars", "words"}`` of the normalized content."""
    text = normalize_text(ctx.content)
    return {"text": text, "chars": len(text), "words": len(text.split())}


normalize.provides_text = True  # type: ignore[attr-defined]
