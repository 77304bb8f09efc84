"""Fingerprint the note: sha256 of the normalized text, plus a 64-bit simhash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from notepipe.stages import StageContext
from notepipe.stages.normalize import normalize_text

SIMHASH_BITS = 64
SHINGLE_WORDS = 3


def simhash(text: str, *, shingle: int = SHINGLE_WORDS) -> int:
    """Charikar simhash over case-folded word shingles; near-duplicates differ in few bits."""
    words = text.casefold().split()
    if not words:
        return 0
    grams = [" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    rows = [
        format(
            int.from_bytes(
                hashlib.blake2b(gram.encode("utf-8"), digest_size=SIMHASH_BITS // 8).digest()
            ),
            f"0{SIMHASH_BITS}b",
        )
        for gram in grams
    ]
    # Bit set where more shingle hashes have a 1 than a 0 in that position (MSB first).
    columns = zip(*rows, strict=True)
    majority = ("1" if 2 * column.count("1") > len(rows) else "0" for column in columns)
    return int("".join(majority), 2)


def content_hash(ctx: StageContext) -> Mapping[str, Any]:
    """Return ``{"sha256", "simhash"}`` (hex strings) of the normalized text.

    The text is normalized again here (idempotent) so the hash ignores whitespace
    and Unicode-form differences even when no ``normalize`` stage ran first.
    """
    text = normalize_text(ctx.text)
    return {
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "simhash": f"{simhash(text):016x}",
    }
