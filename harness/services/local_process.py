"""What the local backend's server processes (redis-server, postgres, pgbouncer) share:
spawned through the reaper on a free loopback port, ready when a check passes (or killed,
with the log's tail, when it does not), stopped by a signal, paused and resumed as a
process tree."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services.ports import LOOPBACK, LoopbackEndpoint, free_port, start_on_free_port
from harness.wait import WaitTimeout, wait_until


class LocalProcessService(LoopbackEndpoint):
    """A server process on ``127.0.0.1:<port>`` logging to ``log_path``.

    Subclasses set the class attributes, build the process in :meth:`_start_once` (with
    :meth:`_spawn`, then :meth:`_await_ready`), and keep their own ``url``/``version``.
    """

    #: The program's name in messages ("redis-server").
    program: ClassVar[str]
    #: How to install it, appended to start failures.
    hint: ClassVar[str]
    #: What the log says when another process took the port first.
    port_taken_marker: ClassVar[str] = "Address already in use"
    #: The signal for a clean stop, and whether only the leader gets it.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    stop_leader_only: ClassVar[bool] = False
    #: Seconds to become ready (per check), and to stop before SIGKILL.
    start_timeout: ClassVar[float] = 20.0
    stop_timeout: ClassVar[float] = 10.0

    def _init_process(self, port: int | None, log_path: Path) -> None:
        self._auto_port = port is None
        self._port = port if port is not None else free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        start_on_free_port(
            self,
            self._start_once,
            retry=self._auto_port and not self._started_once,
            port_taken_marker=self.port_taken_marker,
        )
        self._started_once = True

    def _start_once(self) -> None:
        raise NotImplementedError

    def _spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        self._proc = reaper.spawn(list(argv), env=env, cwd=cwd, log_path=self.log_path, user=user)

    def _await_ready(
        self,
        checks: Sequence[tuple[Callable[[], object], str]],
        transient: tuple[type[BaseException], ...],
    ) -> None:
        """Poll each ``(check, what it waits for)`` in turn; on failure kill the process and
        raise :class:`ServiceStartError` with the log's tail and the install hint."""
        try:
            for check, describe in checks:
                wait_until(check, self.start_timeout, describe=describe, transient=transient)
        except (WaitTimeout, ServiceStartError) as exc:
            self.kill()
            raise ServiceStartError(
                f"{self.program} did not start on {LOOPBACK}:{self._port}: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{self.logs(30)}\n{self.hint}"
            ) from exc

    def _check_alive(self) -> None:
        """For readiness checks: a process that exited will not become ready."""
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise ServiceStartError(f"{self.program} exited with code {code}")

    def stop(self) -> None:
        """A clean stop (``stop_signal``), wait, SIGKILL the tree if it hangs."""
        if self._proc is None:
            return
        # terminate() resumes a paused process tree so it can shut down.
        reaper.terminate(
            self._proc,
            sig=self.stop_signal,
            grace=self.stop_timeout,
            leader_only=self.stop_leader_only,
        )
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the process and everything it started."""
        if self._proc is None:
            return
        reaper.terminate(self._proc, sig=signal.SIGKILL, grace=self.stop_timeout)
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP the process, then every process it started."""
        reaper.signal_tree(self._require_proc(), signal.SIGSTOP)

    def resume(self) -> None:
        reaper.signal_tree(self._require_proc(), signal.SIGCONT)

    def logs(self, tail: int = 50) -> str:
        return reaper.log_tail(self.log_path, tail, missing=f"(no log at {self.log_path})")

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise HarnessError(f"{self!r} is not running")
        return self._proc
