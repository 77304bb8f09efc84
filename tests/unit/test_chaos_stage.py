"""The harness's chaos stage: directives parsed strictly, faults applied for real."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from harness.chaos_stage import (
    CHAOS_STAGE,
    ChaosDirective,
    ChaosDirectiveError,
    ChaosError,
    chaos,
    directive,
    parse_directives,
)
from notepipe.settings import DEFAULT_STAGES
from notepipe.stages import StageContext, enrich, load_stages


def ctx(content: str, attempt: int = 1) -> StageContext:
    return StageContext(
        note_id=42, attempt=attempt, content=content, metadata={}, text=content, results={}
    )


def test_plain_content_is_a_no_op() -> None:
    assert chaos(ctx("a perfectly ordinary note [not chaos] [chaos]")) == {}


def test_parse_several_directives_in_order() -> None:
    content = "x [chaos:sleep=0.5] y [CHAOS:raise-until=2][chaos:cpu=1][chaos:raise] [chaos:exit]"
    assert parse_directives(content) == [
        ChaosDirective("sleep", 0.5),
        ChaosDirective("raise-until", 2),
        ChaosDirective("cpu", 1),
        ChaosDirective("raise"),
        ChaosDirective("exit"),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[chaos:sleep]", "needs a value"),
        ("[chaos:sleep=]", "needs a value"),
        ("[chaos:sleep=soon]", "not a number of seconds"),
        ("[chaos:sleep=-1]", "finite and >= 0"),
        ("[chaos:sleep=nan]", "finite and >= 0"),
        ("[chaos:cpu=inf]", "finite and >= 0"),
        ("[chaos:raise-until=1.5]", "not an integer"),
        ("[chaos:raise=3]", "takes no value"),
        ("[chaos:explode]", "unknown directive 'explode'"),
        ("[chaos:sleep=1", "malformed chaos directive at offset 0"),
        ("ok [chaos: sleep=1]", "malformed chaos directive at offset 3"),
    ],
)
def test_malformed_directives_are_rejected(content: str, expected: str) -> None:
    with pytest.raises(ChaosDirectiveError, match=expected):
        chaos(ctx(content))


def test_directive_builder_round_trips() -> None:
    assert directive("sleep", 2.5) == "[chaos:sleep=2.5]"
    assert directive("raise-until", 2) == "[chaos:raise-until=2]"
    assert directive("exit") == "[chaos:exit]"
    assert parse_directives(directive("cpu", 0.25)) == [ChaosDirective("cpu", 0.25)]
    with pytest.raises(ChaosDirectiveError):
        directive("sleep")


def test_raise_always_raises() -> None:
    for attempt in (1, 2, 10):
        with pytest.raises(ChaosError, match="note 42 attempt"):
            chaos(ctx("poison [chaos:raise]", attempt))


def test_raise_until_succeeds_after_the_given_attempt() -> None:
    content = "flaky [chaos:raise-until=2]"
    for attempt in (1, 2):
        with pytest.raises(ChaosError, match="until attempt 2"):
            chaos(ctx(content, attempt))
    assert chaos(ctx(content, 3)) == {"applied": ["[chaos:raise-until=2]"]}


def test_sleep_sleeps_for_the_asked_time() -> None:
    start = time.monotonic()
    out = chaos(ctx("[chaos:sleep=0.3]"))
    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 1.5
    assert out == {"applied": ["[chaos:sleep=0.3]"]}


def test_cpu_burns_cpu_time() -> None:
    start = time.thread_time()
    chaos(ctx("[chaos:cpu=0.3]"))
    assert time.thread_time() - start >= 0.3


class _Alarm(Exception):
    pass


@pytest.fixture
def raising_alarm() -> Iterator[None]:
    """SIGALRM raises in the main thread, as RQ's job timeout (UnixSignalDeathPenalty) does."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.usefixtures("raising_alarm")
@pytest.mark.parametrize("content", ["[chaos:sleep=30]", "[chaos:cpu=30]"])
def test_job_timeout_signal_interrupts_sleep_and_cpu(content: str) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    start = time.monotonic()
    with pytest.raises(_Alarm):
        chaos(ctx(content))
    assert time.monotonic() - start < 2.0


def test_exit_kills_the_process_without_cleanup() -> None:
    code = (
        "from harness.chaos_stage import chaos\n"
        "from notepipe.stages import StageContext\n"
        "print('before', flush=True)\n"
        "try:\n"
        "    chaos(StageContext(1, 1, '[chaos:exit]', {}, '[chaos:exit]', {}))\n"
        "finally:\n"
        "    print('finally ran', flush=True)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout == "before\n"


def test_chaos_stage_loads_by_its_import_path_after_the_defaults() -> None:
    stages = load_stages([*DEFAULT_STAGES, CHAOS_STAGE])
    assert stages[-1].name == "chaos"
    ok = enrich(stages, note_id=1, attempt=3, content="hi [chaos:raise-until=2]", metadata={})
    assert ok["chaos"] == {"applied": ["[chaos:raise-until=2]"]}
    assert enrich(stages, note_id=1, attempt=1, content="plain", metadata={})["chaos"] == {}
    with pytest.raises(ChaosError):
        enrich(stages, note_id=1, attempt=1, content="[chaos:raise]", metadata={})


def test_rq_job_timeout_interrupts_a_long_sleep() -> None:
    from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

    start = time.monotonic()
    with (
        pytest.raises(JobTimeoutException),
        UnixSignalDeathPenalty(1, JobTimeoutException, job_id="chaos-test"),  # type: ignore[no-untyped-call]
    ):
        chaos(ctx("[chaos:sleep=30]"))
    assert time.monotonic() - start < 3.0
