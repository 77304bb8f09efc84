"""The two command lines: ``notepipe`` keeps the pipeline's verbs, ``notepipe-harness``
has the harness's, and the old ``notepipe stack|chaos|capacity`` spellings hand over."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import cli as harness_cli
from notepipe import cli as notepipe_cli


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
