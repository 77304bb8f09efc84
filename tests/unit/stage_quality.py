"""Scores the language and keyword stages on the multilingual set in ``data/``.

``language_correct``: texts whose detected language is the labelled one.
``keyword_hits``: labelled keywords found (case-folded, as a substring) among the
top keywords the keyword stage returns for their text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "multilingual.json"

#: Codes that name the same language (langdetect's Chinese variants).
_SAME = {"zh-cn": "zh", "zh-tw": "zh"}

Enrich = Callable[[str], Mapping[str, Any]]


@dataclass
class Score:
    language_correct: int = 0
    keyword_hits: int = 0
    texts: int = 0
    keywords: int = 0
    misses: list[str] = field(default_factory=list)


def load_set() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def score(enrich_text: Enrich) -> Score:
    """Run ``enrich_text`` (text -> enrichment with ``detect_language`` and
    ``extract_keywords``) on every text of the set."""
    result = Score()
    for item in load_set()["texts"]:
        out = enrich_text(item["text"])
        code = str(out["detect_language"]["code"])
        result.texts += 1
        if _SAME.get(code, code) == item["lang"]:
            result.language_correct += 1
        else:
            result.misses.append(f"{item['lang']}: detected {code}")
        found = [str(k["keyword"]).casefold() for k in out["extract_keywords"]["keywords"]]
        for gold in item["keywords"]:
            result.keywords += 1
            if any(gold.casefold() in kw for kw in found):
                result.keyword_hits += 1
            else:
                result.misses.append(f"{item['lang']}: keyword {gold!r} not in {found[:5]}")
    return result
