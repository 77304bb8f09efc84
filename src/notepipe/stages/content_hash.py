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
    """Charikar simhash over case-folded word shingles; near-duplicates differ in few bits.

    Bit ``i`` (MSB first) is set where more shingle hashes (blake2b, 64 bits, big-endian)
    have a 1 than a 0 in that position; the columns are counted with numpy (a Python loop
    over 64 columns cost ~10 ms for a 16 KiB note).
    """
    import numpy as np

    words = text.casefold().split()
    if not words:
        return 0
    grams = [" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    digests = b"".join(
        hashlib.blake2b(gram.encode("utf-8"), digest_size=SIMHASH_BITS // 8).digest()
        for gram in grams
    )
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8).reshape(len(grams), -1), axis=1)
    majority = 2 * bits.sum(axis=0, dtype=np.int64) > len(grams)
    return int("".join("1" if bit else "0" for bit in majority), 2)


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


def _warm_up() -> None:
    simhash("warm up numpy once in the worker parent, not in every horse")


content_hash.warm_up = _warm_up  # type: ignore[attr-defined]
