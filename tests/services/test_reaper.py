"""The reaper: every process the harness starts dies with it."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness import reaper
from harness.services.ports import free_port
from harness.wait import wait_until

# A harness-like process: spawns two process groups (one with a grandchild),
# prints their pgids once all three processes run, then on "go" ends as told.
# It sets the SIGHUP disposition it means to test first: a child inherits an ignored
# SIGHUP from its parent (`nohup make test`), and the reaper honours an ignored one.
CHILD = r"""
import json, os, signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN if sys.argv[3] == "ignore" else signal.SIG_DFL)
from pathlib import Path
from harness import reaper
from harness.wait import wait_until

mode, logdir = sys.argv[1], Path(sys.argv[2])
if mode == "prior-handler":
    def prior(signum, frame):
        print("prior handler ran", flush=True)
        sys.exit(7)
    signal.signal(signal.SIGTERM, prior)
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
parent = [sys.executable, "-c",
          "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(600)",
          *sleeper]
a = reaper.spawn(sleeper, env=None, cwd=logdir, log_path=logdir / "a.log")
b = reaper.spawn(parent, env=None, cwd=logdir, log_path=logdir / "b.log")
wait_until(lambda: len(reaper.live_group_members(b.pid) or []) == 2, 20,
           describe="the grandchild")
print(json.dumps([a.pid, b.pid]), flush=True)
sys.stdin.readline()  # the test checks the processes, then says "go"
if mode == "exit":
    sys.exit(0)
if mode == "raise":
    raise RuntimeError("the harness crashed")
time.sleep(600)
"""


def _run_child(
    mode: str, tmp_path: Path, sighup: str = "default"
) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(tmp_path), sighup],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"child printed nothing; stderr: {proc.communicate(timeout=30)[1]}"
    return proc, json.loads(line)


def _all_gone(pgids: list[int]) -> bool:
    return not any(reaper.live_group_members(pgid) for pgid in pgids)


def _cleanup(proc: subprocess.Popen[str], pgids: list[int]) -> None:
    for pgid in [proc.pid, *pgids]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    proc.communicate(timeout=30)


@pytest.mark.parametrize(
    ("mode", "sighup", "sigs", "expected_code"),
    [
        ("exit", "default", (), 0),
        ("raise", "default", (), 1),
        ("wait", "default", (signal.SIGTERM,), -signal.SIGTERM),
        ("wait", "default", (signal.SIGHUP,), -signal.SIGHUP),
        # Started with SIGHUP ignored (nohup): the user asked the run to survive a hangup,
        # so the reaper leaves it ignored; the SIGTERM after it is what ends the run
        # (had the SIGHUP acted, the exit code would be -SIGHUP: it is delivered first).
        ("wait", "ignore", (signal.SIGHUP, signal.SIGTERM), -signal.SIGTERM),
        ("prior-handler", "default", (signal.SIGTERM,), 7),
    ],
    ids=[
        "exit",
        "uncaught-exception",
        "sigterm",
        "sighup",
        "sighup-ignored-by-the-user",
        "sigterm-chains-prior-handler",
    ],
)
def test_leftovers_are_reaped(
    tmp_path: Path,
    mode: str,
    sighup: str,
    sigs: tuple[signal.Signals, ...],
    expected_code: int,
) -> None:
    proc, pgids = _run_child(mode, tmp_path, sighup)
    try:
        assert len(pgids) == 2
        assert all(reaper.live_group_members(pgid) for pgid in pgids)
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        for sig in sigs:
            os.kill(proc.pid, sig)
        assert proc.wait(timeout=30) == expected_code
        wait_until(lambda: _all_gone(pgids), 10, describe="every spawned process group to die")
        if mode == "prior-handler":
            assert proc.stdout is not None
            assert "prior handler ran" in proc.stdout.read()
    finally:
        _cleanup(proc, pgids)


def test_spawn_logs_and_runs_in_its_own_group(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    proc = reaper.spawn(
        [
            sys.executable,
            "-c",
            "import os, sys; print(os.getpgid(0)); print('err', file=sys.stderr)",
        ],
        env={"PATH": os.environ["PATH"]},
        cwd=tmp_path,
        log_path=log,
    )
    try:
        assert proc.wait(timeout=30) == 0
        assert proc in reaper.registered()
        assert sorted(log.read_text().split()) == sorted([str(proc.pid), "err"])
    finally:
        reaper.terminate(proc)
    assert proc not in reaper.registered()


def test_terminate_escalates_to_sigkill_and_handles_stopped_processes(tmp_path: Path) -> None:
    stubborn = reaper.spawn(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
            "; print('ready', flush=True); time.sleep(600)",
        ],
        env=None,
        cwd=tmp_path,
        log_path=tmp_path / "stubborn.log",
    )
    stopped = reaper.spawn(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env=None,
        cwd=tmp_path,
        log_path=tmp_path / "stopped.log",
    )
    try:
        wait_until(
            lambda: "ready" in (tmp_path / "stubborn.log").read_text(),
            20,
            describe="the stubborn child to ignore SIGTERM",
        )
        reaper.signal_group(stopped, signal.SIGSTOP)
        reaper.terminate(stopped, grace=10)
        assert stopped.returncode == -signal.SIGTERM
        reaper.terminate(stubborn, grace=0.3)
        assert stubborn.returncode == -signal.SIGKILL
        assert _all_gone([stubborn.pid, stopped.pid])
    finally:
        reaper.terminate(stubborn, sig=signal.SIGKILL)
        reaper.terminate(stopped, sig=signal.SIGKILL)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_spawn_as_another_user(tmp_path: Path) -> None:
    user = "nobody"
    tmp_path.chmod(0o755)
    proc = reaper.spawn(["id", "-u"], env=None, cwd="/", log_path=tmp_path / "id.log", user=user)
    try:
        assert proc.wait(timeout=30) == 0
        assert (tmp_path / "id.log").read_text().strip() == str(pwd.getpwnam(user).pw_uid)
    finally:
        reaper.terminate(proc)


def test_free_port_is_bindable_on_loopback() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535
