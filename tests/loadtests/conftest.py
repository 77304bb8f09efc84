"""A ``notepipe-harness stack up`` stack shared by the load test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.commands.stack_process import StackUpProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A stack with 2 workers (``--chaos-stage`` if the module sets ``CHAOS_STAGE = True``);
    yields the environment with its NOTEPIPE_* URLs, plus NOTEPIPE_TEST_STATE_DIR and
    NOTEPIPE_TEST_ENV_FILE (its --state-dir and --env-file)."""
    stack = StackUpProcess(
        tmp_path_factory.mktemp("stack"),
        workers=2,
        cwd=ROOT,
        chaos_stage=bool(getattr(request.module, "CHAOS_STAGE", False)),
    )
    stack.start()
    try:
        stack.wait_ready(60)
        yield {
            **stack.clean_env,
            **stack.stack_env(),
            "NOTEPIPE_TEST_STATE_DIR": str(stack.state_dir),
            "NOTEPIPE_TEST_ENV_FILE": str(stack.env_file),
        }
    finally:
        stack.stop()
