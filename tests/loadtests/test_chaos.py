"""``notepipe-harness chaos`` against a live ``notepipe-harness stack up`` stack, under a little load."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from harness.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: The stack runs the chaos stage (``stack up --chaos-stage``), so each note holds its
#: worker for 0.5 s; posted every 0.2 s to 2 workers, a busy worker is there for
#: ``kill_horse busy`` to find. Without the stage a note took ~10 ms and the fault's
#: ledger reads could miss every one of them for 15 s (CI: "0 processing").
CHAOS_STAGE = True
BUSY_NOTE = "[chaos:sleep=0.5] " + "word " * 400

pytestmark = pytest.mark.slow


def test_schedule_applies_and_heals_faults(stack_env: dict[str, str], tmp_path: Path) -> None:
    api = stack_env["NOTEPIPE_API_URL"]
    schedule = tmp_path / "schedule.json"
    schedule.write_text(
        json.dumps(
            [
                {"kind": "pause_worker", "at": 0.5, "duration": 1.0, "target": "worker-0"},
                {"kind": "kill_horse", "at": 1.0, "target": "busy"},
                {"kind": "pause_redis", "at": 2.0, "duration": 0.5},  # the former spelling
                {"kind": "pause_service", "at": 3.0, "duration": 0.5, "target": "postgres"},
                {"kind": "kill_worker", "at": 4.5, "duration": 0.5, "target": "worker-1"},
            ]
        )
    )
    out = tmp_path / "faults.jsonl"
    stop = threading.Event()

    def post_notes() -> None:  # keep the workers busy, so there is a horse to kill
        with httpx.Client(base_url=api, timeout=10) as client:
            while not stop.wait(0.2):
                # the API waits on paused Redis/PostgreSQL; errors are fine, keep going
                with contextlib.suppress(httpx.HTTPError):
                    client.post("/notes", json={"content": BUSY_NOTE, "metadata": {}})

    poster = threading.Thread(target=post_notes, daemon=True)
    poster.start()
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "harness.cli", "chaos", "--schedule", str(schedule)),
                *("--env-file", stack_env["NOTEPIPE_TEST_ENV_FILE"]),
                *("--state-dir", stack_env["NOTEPIPE_TEST_STATE_DIR"], "--out", str(out)),
            ],
            cwd=ROOT,
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        stop.set()
        poster.join(timeout=15)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.returncode == 0, (result.stdout, result.stderr, records)
    horse = next(r for r in records if r["kind"] == "kill_horse")
    assert horse["target"] in ("worker-0", "worker-1"), json.dumps(horse)
    assert sorted((r["kind"], r["target"]) for r in records) == [
        ("kill_horse", horse["target"]),
        ("kill_worker", "worker-1"),
        ("pause_service", "postgres"),
        ("pause_service", "redis"),
        ("pause_worker", "worker-0"),
    ]
    for record in records:
        assert record["ok"], record
        assert record["end"] >= record["start"]
    # the killed worker's heal started a replacement, and the stack recorded it
    state_file = Path(stack_env["NOTEPIPE_TEST_STATE_DIR"]) / "stack.json"

    def replaced() -> bool:
        names = json.loads(state_file.read_text())["processes"]
        return "worker-1" not in names and len([n for n in names if n.startswith("worker-")]) == 2

    wait_until(replaced, 10, describe="stack.json to list the replacement worker")
    pause = next(r for r in records if r["kind"] == "pause_worker")
    assert pause["end"] - pause["start"] >= 0.9
    # healed: nothing is left stopped, the stack still serves and processes notes
    note = httpx.post(f"{api}/notes", json={"content": "after chaos", "metadata": {}}).json()

    def completed() -> bool:
        return httpx.get(f"{api}/notes/{note['id']}").json()["status"] == "completed"

    wait_until(completed, 60, describe="a note posted after the faults to complete")
