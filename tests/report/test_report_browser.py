"""The page as a browser renders it: headless Chromium screenshots it and dumps its DOM.

A missing Chromium fails (CI installs it); it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest

from harness.report import write_run_report
from tests.report.report_synth import invalid_scenario, run_info, valid_scenario

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_S = 90


def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"headless Chromium is needed to render the run report and was not found at "
            f"{CHROMIUM} or on PATH. Hint: apt-get install chromium"
        )
    return found


def run_chromium(args: list[str], profile: Path) -> str:
    """Run one headless Chromium to completion; its whole process group dies in ``finally``."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(cmd)}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err[-2000:]}"
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chromium_renders_the_report(tmp_path: Path) -> None:
    run_dir = write_run_report(
        tmp_path / "reports", run_info(), [valid_scenario(), invalid_scenario()]
    )
    url = (run_dir / "index.html").as_uri()
    shot = tmp_path / "report.png"

    run_chromium(
        [f"--screenshot={shot}", "--window-size=1280,2000", url], tmp_path / "profile-shot"
    )
    assert png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few KB

    dom = run_chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.count('class="chart throughput-chart"') == 2
    assert dom.count('class="fault-window"') >= 3
    assert 'class="fault-label"' in dom
    assert dom.count('class="chart waterfall"') >= 2
    assert 'class="span-bar"' in dom
    assert 'class="ledger-event"' in dom
    assert "INVALID" in dom.upper()
    assert "<script>alert" not in dom
