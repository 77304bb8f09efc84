"""A ``notepipe-harness stack up`` stack shared by the load test modules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A stack with 2 workers; yields the environment with its NOTEPIPE_* URLs, plus
    NOTEPIPE_TEST_STATE_DIR and NOTEPIPE_TEST_ENV_FILE (its --state-dir and --env-file)."""
    base = tmp_path_factory.mktemp("stack")
    env_file, state_dir = base / "env", base / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTEPIPE_", "OTEL_"))}
    with open(base / "stack.log", "wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "harness.cli", "stack", "up", "--workers", "2"),
                *("--env-file", str(env_file), "--state-dir", str(state_dir)),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"stack up exited: {(base / 'stack.log').read_text()}")
            return env_file.exists()

        wait_until(ready, 60, describe="notepipe-harness stack up to write its env file")
        yield {
            **env,
            **_read_env(env_file),
            "NOTEPIPE_TEST_STATE_DIR": str(state_dir),
            "NOTEPIPE_TEST_ENV_FILE": str(env_file),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
