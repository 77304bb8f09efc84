"""The language and keyword stages on the shipped multilingual set: at least as good as
the figures measured with the stages they replaced (``baseline`` in the data file)."""

from notepipe.settings import DEFAULT_STAGES
from notepipe.stages import enrich, load_stages
from tests.unit.stage_quality import load_set, score


def test_quality_at_least_the_baseline() -> None:
    stages = load_stages(DEFAULT_STAGES)
    result = score(
        lambda text: enrich(stages, note_id=1, attempt=1, content=text, metadata={}, max_chars=8192)
    )
    baseline = load_set()["baseline"]
    assert result.texts >= 30
    assert result.language_correct >= baseline["language_correct"], result.misses
    assert result.keyword_hits >= baseline["keyword_hits"], result.misses


def test_max_chars_caps_what_the_costly_stages_read() -> None:
    stages = load_stages(DEFAULT_STAGES)
    english = "The worker renews its lease with a heartbeat every five seconds. " * 4
    german = "Der Vorstand hat den Jahresbericht heute veröffentlicht, sagte der Sprecher. " * 40
    full = enrich(stages, note_id=1, attempt=1, content=english + german, metadata={})
    capped = enrich(
        stages, note_id=1, attempt=1, content=english + german, metadata={}, max_chars=len(english)
    )
    assert full["detect_language"]["code"] == "de"
    assert capped["detect_language"]["code"] == "en"
    assert all(
        "vorstand" not in k["keyword"].lower() for k in capped["extract_keywords"]["keywords"]
    )
    # the hash still covers the whole note
    assert capped["content_hash"] == full["content_hash"]
