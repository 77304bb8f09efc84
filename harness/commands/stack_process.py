"""``notepipe-harness stack up`` as a child process: start it, wait for its env file,
read the stack's URLs, stop it (SIGTERM: it stops its stack; SIGKILL of its group if it
hangs). For tools that need a stack in another process: load tests, benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.wait import wait_until


class StackUpProcess:
    """``stack up --workers N [--chaos-stage]`` with its ``--env-file``, ``--state-dir``
    and log in ``base``."""

    def __init__(
        self, base: Path, *, workers: int = 2, cwd: Path | None = None, chaos_stage: bool = False
    ) -> None:
        self.base = base
        self.env_file = base / "env"
        self.state_dir = base / "state"
        self.log_path = base / "stack.log"
        self.workers = workers
        self.chaos_stage = chaos_stage
        self.cwd = cwd
        #: This environment without NOTEPIPE_*/OTEL_* (the stack sets its own).
        self.clean_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("NOTEPIPE_", "OTEL_"))
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "harness.cli", "stack", "up"),
                    *("--workers", str(self.workers)),
                    *("--env-file", str(self.env_file), "--state-dir", str(self.state_dir)),
                    *(("--chaos-stage",) if self.chaos_stage else ()),
                ],
                cwd=self.cwd,
                env=self.clean_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float, *, interval: float = 0.05) -> None:
        """Until the env file exists (the stack is up); raises with the log if it exited."""
        proc = self.proc
        assert proc is not None, "start() first"

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"stack up exited: {self.log_path.read_text()[-2000:]}")
            return self.env_file.exists()

        wait_until(
            ready,
            timeout,
            describe="notepipe-harness stack up to write its env file",
            interval=interval,
            max_interval=interval * 4,
        )

    def stack_env(self) -> dict[str, str]:
        """The env file's ``NOTEPIPE_*`` settings (the stack's URLs)."""
        lines = self.env_file.read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def stop(self, timeout: float = 60) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
