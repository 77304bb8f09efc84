"""A process that will not stop shows where it is stuck before the harness kills it: every
notepipe process writes its threads' stacks to its log on STACK_DUMP_SIGNAL."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import reaper
from harness.processes import PipelineProcess, start_worker, wait_worker_registered
from harness.wait import wait_until
from notepipe.contracts.signals import STACK_DUMP_MARKER
from notepipe.settings import Settings

#: Ignores SIGTERM (as a process stuck in its shutdown would), answers the dump signal.
_STUBBORN = """
import faulthandler, signal, time
from notepipe.contracts.signals import STACK_DUMP_SIGNAL
faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
def stuck_in_shutdown():
    time.sleep(60)
stuck_in_shutdown()
"""


def test_a_process_that_outlives_its_grace_dumps_its_stacks_then_dies(log_dir: Path) -> None:
    log_path = log_dir / "stubborn.log"
    proc = reaper.spawn([sys.executable, "-c", _STUBBORN], env=None, cwd=None, log_path=log_path)
    stubborn = PipelineProcess("worker", "worker-9", proc, log_path)
    wait_until(lambda: "ready" in stubborn.logs(5), 10, describe="the stubborn process to start")
    stubborn.stop(grace=0.5)
    assert proc.returncode == -9
    text = log_path.read_text()
    assert STACK_DUMP_MARKER in text, text
    assert "stuck_in_shutdown" in text, text  # the dump says where it was


def test_a_notepipe_worker_writes_its_stacks_and_goes_on(
    pipeline_settings: Settings, log_dir: Path
) -> None:
    worker = start_worker(pipeline_settings, log_dir)
    try:
        wait_worker_registered(pipeline_settings.redis_dsn, worker)
        # The worker and its span relay (a child), when tracing is on; each one dump.
        assert worker.dump_stacks("asked by a test") == 1 + len(worker.descendants())
        assert worker.alive()
        assert "in work" in worker.logs(200), worker.logs(200)  # RQ's loop, on the main thread
    finally:
        worker.stop()
    assert worker.proc.returncode == 0, worker.logs()
