"""The interfaces users touch, used the way users use them, against a ``stack up``
stack: the README's monitoring commands, and the API against its own OpenAPI schema."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def readme_monitoring_commands() -> list[str]:
    """The ``sh`` block after "The guide's monitoring commands" in the README."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"The guide's monitoring commands.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md lost its monitoring commands block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_lists_the_three_tools() -> None:
    commands = readme_monitoring_commands()
    assert [c.split()[0].rsplit("/", 1)[-1] for c in commands] == [
        "redis-cli",
        "redis-cli",
        "rq",
        "notepipe",
    ]


def test_readme_monitoring_commands_work_as_written(stack_env: dict[str, str]) -> None:
    assert shutil.which("redis-cli"), "redis-cli is missing: apt-get install redis-tools"
    assert stack_env["NOTEPIPE_REDIS_URL"].startswith("redis://default:")
    outputs = []
    for command in readme_monitoring_commands():
        result = subprocess.run(
            ["bash", "-c", command.replace(".venv/bin/", f"{BIN}/")],
            env={**stack_env, "PATH": f"{BIN}:{os.environ['PATH']}"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, (command, output)
        assert not re.search(r"WRONGPASS|NOAUTH|ERR|Traceback", output), (command, output)
        outputs.append(result.stdout)
    llen, workers, rq_info, status = outputs
    assert llen.strip().isdigit()
    assert len(re.findall(r"rq:worker:notepipe\.", workers)) == 2
    assert "note_enrichment" in rq_info and "2 workers" in rq_info
    assert "note_enrichment" in status


def test_api_conforms_to_its_own_openapi_schema(stack_env: dict[str, str], tmp_path: Path) -> None:
    """Schemathesis with every check, the schema read from the live app, a bounded number
    of examples per operation (deterministic). NUL is not generated: the API refuses it
    on purpose (PostgreSQL text cannot hold it) and the schema says so for ``content``,
    but JSON Schema cannot say it for every string nested in ``metadata``."""
    api = stack_env["NOTEPIPE_API_URL"]
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{api}/openapi.json",
            *("--checks", "all"),
            *("--max-examples", "25"),
            "--generation-deterministic",
            *("--generation-allow-x00", "false"),
            *("--request-timeout", "10"),
            *("--report", "junit", "--report-dir", str(tmp_path)),
        ],
        env={**stack_env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout, result.stdout[-3000:]
