"""The two command lines: ``notepipe`` keeps the pipeline's verbs, ``notepipe-harness``
has the harness's, and the old ``notepipe stack|chaos|capacity`` spellings hand over."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import cli as harness_cli
from harness.chaos_stage import CHAOS_STAGE
from harness.commands.stack import stages_with_chaos
from notepipe import cli as notepipe_cli
from notepipe.settings import DEFAULT_STAGES


def _verbs(parser: object) -> set[str]:
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_each_command_has_its_own_verbs() -> None:
    assert _verbs(notepipe_cli.build_parser()) == {
        "api",
        "worker",
        "reconcile",
        "migrate",
        "status",
    }
    assert _verbs(harness_cli.build_parser()) == {"stack", "chaos", "capacity"}
    assert set(notepipe_cli.HARNESS_VERBS) == _verbs(harness_cli.build_parser())


@pytest.mark.parametrize("verb", ["stack", "chaos", "capacity"])
def test_old_spellings_hand_over_to_the_harness(verb: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "notepipe.cli", verb, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: notepipe-harness {verb}")


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ({}, (*DEFAULT_STAGES, CHAOS_STAGE)),
        (
            {"NOTEPIPE_STAGES": " notepipe.stages.normalize:normalize ,"},
            ("notepipe.stages.normalize:normalize", CHAOS_STAGE),
        ),
        ({"NOTEPIPE_STAGES": f"{CHAOS_STAGE},x:y"}, (CHAOS_STAGE, "x:y")),
    ],
)
def test_chaos_stage_joins_the_configured_stages_once(
    configured: dict[str, str], expected: tuple[str, ...]
) -> None:
    assert stages_with_chaos(configured) == expected


def test_stack_up_takes_the_chaos_stage_flag() -> None:
    parser = harness_cli.build_parser()
    assert parser.parse_args(["stack", "up", "--chaos-stage"]).chaos_stage is True
    assert parser.parse_args(["stack", "up"]).chaos_stage is False
