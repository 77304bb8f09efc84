"""Result integrity: the checker recomputes a completed note's deterministic enrichment.

Written here from the stages' documented behaviour, *not* by importing the
pipeline's stage code (a bug there must not be copied into the judge):

* ``normalize``: NFKC; whitespace (including control whitespace) becomes one space;
  other control characters, lone surrogates, ZWSP, WORD JOINER and BOM are dropped;
  stripped. ``{"text", "chars", "words"}``.
* ``content_hash``: ``sha256`` (hex) of that normalized text.
* ``reading_time``: words of the normalized text at 230 words per minute:
  ``{"words", "minutes" (2 decimals), "seconds" (rounded)}``.

Other stages (language, keywords, entities) are heuristic: only their presence is
checked, as one of the configured stages' keys.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from typing import Any

from harness.checker.context import CheckContext, Violation
from harness.checker.history import COMPLETED

_INVISIBLE = frozenset({"\u200b", "\u2060", "\ufeff"})
WORDS_PER_MINUTE = 230


def normalized(content: str) -> str:
    out: list[str] = []
    for ch in unicodedata.normalize("NFKC", content):
        if ch.isspace():
            out.append(" ")
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs"):
            continue
        else:
            out.append(ch)
    return " ".join(part for part in "".join(out).split(" ") if part)


def expected_fields(content: str) -> dict[str, dict[str, Any]]:
    """The deterministic enrichment fields of ``content``, per stage key."""
    text = normalized(content)
    words = len(text.split())
    minutes = words / WORDS_PER_MINUTE
    return {
        "normalize": {"text": text, "chars": len(text), "words": words},
        "content_hash": {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()},
        "reading_time": {
            "words": words,
            "minutes": round(minutes, 2),
            "seconds": round(minutes * 60),
        },
    }


def enrichment_problems(
    content: str, enrichment: Any, expected_stages: tuple[str, ...] | None
) -> list[str]:
    if not isinstance(enrichment, Mapping) or not enrichment:
        return [f"enrichment is {enrichment!r}, not the stages' results"]
    problems: list[str] = []
    if expected_stages is not None:
        missing = sorted(set(expected_stages) - set(enrichment))
        if missing:
            problems.append(f"enrichment lacks the configured stage(s) {missing}")
    for stage, fields in expected_fields(content).items():
        if expected_stages is not None and stage not in expected_stages:
            continue
        got = enrichment.get(stage)
        if got is None:
            continue  # reported above when configured
        if not isinstance(got, Mapping):
            problems.append(f"{stage} is {got!r}, not a mapping")
            continue
        for key, want in fields.items():
            if got.get(key) != want:
                shown = repr(got.get(key))[:80]
                problems.append(f"{stage}.{key} is {shown}, recomputed {repr(want)[:80]}")
    return problems


def result_integrity(ctx: CheckContext) -> list[Violation]:
    """Each completed note's enrichment carries every configured stage, and its
    deterministic fields equal the checker's own recomputation from the content."""
    out: list[Violation] = []
    for t in ctx.ledger_timelines():
        note = t.note
        assert note is not None
        if note.status != COMPLETED or note.content is None:
            continue
        problems = enrichment_problems(note.content, note.enrichment, ctx.config.expected_stages)
        if problems:
            out.append(ctx.violation("result_integrity", t.note_id, "; ".join(problems[:5])))
    return out
