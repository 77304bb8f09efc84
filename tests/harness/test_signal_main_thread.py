"""``reaper.signal_main_thread``: a signal for the main thread only (``tgkill``), where a
process-directed one may be taken by any thread; used for RQ's shutdown signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness import reaper
from harness.wait import wait_until

#: Catches SIGTERM (an ignored signal inherited as ignored would be discarded) but blocks
#: it, so it stays pending where the kernel put it; says when ready.
CHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: None)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _pending(pid: int) -> tuple[int, int]:
    """(the main thread's own pending signals, the process's shared ones)."""
    fields = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return int(fields["SigPnd"], 16), int(fields["ShdPnd"], 16)


def _blocking_child() -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def test_the_signal_is_pending_on_the_main_thread_not_the_process() -> None:
    child = _blocking_child()
    try:
        reaper.signal_main_thread(child.pid, signal.SIGTERM)
        wait_until(lambda: _pending(child.pid)[0] & SIGTERM_BIT, 5, describe="SIGTERM pending")
        own, shared = _pending(child.pid)
        assert own & SIGTERM_BIT and not shared & SIGTERM_BIT
    finally:
        child.kill()
        child.wait()


def test_a_process_directed_signal_is_shared_by_its_threads() -> None:
    """The contrast: ``os.kill`` leaves the choice of thread to the kernel."""
    child = _blocking_child()
    try:
        os.kill(child.pid, signal.SIGTERM)
        wait_until(lambda: _pending(child.pid)[1] & SIGTERM_BIT, 5, describe="SIGTERM pending")
        assert not _pending(child.pid)[0] & SIGTERM_BIT
    finally:
        child.kill()
        child.wait()


def test_a_process_already_gone_is_not_an_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    reaper.signal_main_thread(child.pid, 0)  # signal 0: a check, harmless if pid is reused
