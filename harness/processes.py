"""Pipeline processes (API, workers, reconciler) as real subprocesses in their own groups.

Each :class:`PipelineProcess` wraps one ``notepipe …`` command started through
:mod:`harness.reaper`, so nothing outlives the session. Faults act on the whole
group (worker and work-horse) or on the horse alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

from harness import reaper
from harness.errors import ServiceStartError
from harness.services.ports import free_port
from harness.wait import WaitTimeout, wait_until
from notepipe.contracts import rq as rq_contract
from notepipe.contracts.signals import STACK_DUMP_MARKER, STACK_DUMP_SIGNAL
from notepipe.settings import Settings

log = logging.getLogger(__name__)

NOTEPIPE = [sys.executable, "-m", "notepipe.cli"]


@dataclass
class PipelineProcess:
    """One running pipeline process (``role`` is ``api``, ``worker`` or ``reconciler``)."""

    role: str
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None
    started_at: float = field(default_factory=time.time)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def recorded_as(self, recorded: str | None) -> bool:
        """Whether a worker name in the ledger or RQ's registry is this process's (any
        incarnation of its RQ loop). By pid: the name's host part is whatever the machine
        was called when the worker started, which the harness cannot recompute later."""
        return rq_contract.worker_matches(recorded, self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """Direct children (a worker's work-horse while a job runs)."""
        try:
            return [child.pid for child in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, sig: int) -> None:
        reaper.signal_group(self.proc, sig)

    def signal_leader(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def signal_main_thread(self, sig: int) -> None:
        """``sig`` to the leader's main thread (``tgkill``), where Python runs signal
        handlers; :meth:`signal_leader` lets the kernel pick any thread of the process."""
        reaper.signal_main_thread(self.pid, sig)

    def descendants(self) -> list[int]:
        """All live descendants. RQ's work-horse calls ``setpgrp()``: it leaves our process
        group, so group signals miss it and it must be found as a descendant."""
        return reaper.descendants(self.pid)

    def kill(self) -> None:
        """SIGKILL the worker, its group and its work-horse (own session) and reap them."""
        horses = self.descendants()
        self.signal_group(signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reaper.terminate(self.proc, sig=signal.SIGKILL, grace=0.5)

    def horses(self) -> list[int]:
        """The work-horse(s): children that lead their own process group (RQ's horse calls
        ``setpgrp``); RQ's scheduler process, also a child, stays in the worker's group."""
        found = []
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == pid:
                    found.append(pid)
        return found

    def kill_horse(self) -> list[int]:
        """SIGKILL only the work-horse(s); the worker parent survives. Returns the pids."""
        horses = self.horses()
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return horses

    def pause(self) -> None:
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def stop(self, grace: float = 10.0) -> None:
        """Warm shutdown (SIGTERM to the leader, RQ finishes the current job), then SIGKILL
        of whatever is left, work-horses included: a process still there after ``grace``
        s first writes every thread's stack to its log (:meth:`dump_stacks`)."""
        horses = self.descendants()
        try:
            reaper.terminate(
                self.proc,
                sig=signal.SIGTERM,
                grace=grace,
                leader_only=True,
                before_kill=lambda: self.dump_stacks(f"still running {grace:g} s after SIGTERM"),
            )
        finally:
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def dump_stacks(self, why: str, timeout: float = 2.0) -> int:
        """Have the process and its descendants (work-horse, span relay) write every
        thread's stack to the log (:data:`~notepipe.contracts.signals.STACK_DUMP_SIGNAL`);
        returns how many dumps appeared within ``timeout`` s."""
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        asked = 0
        for pid in [self.pid, *self.descendants()]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, STACK_DUMP_SIGNAL)
                asked += 1

        def dumps() -> int:
            with self.log_path.open("rb") as log_file:
                log_file.seek(start)
                return log_file.read().decode(errors="replace").count(STACK_DUMP_MARKER)

        with contextlib.suppress(WaitTimeout, OSError):
            wait_until(
                lambda: dumps() >= asked, timeout, describe="the stack dumps", max_interval=0.05
            )
        written = dumps() if self.log_path.exists() else 0
        log.warning(
            "%s pid %d: %s; %d of %d processes wrote their threads' stacks to %s",
            self.name,
            self.pid,
            why,
            written,
            asked,
            self.log_path,
        )
        return written

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def logs(self, tail: int = 60) -> str:
        return reaper.log_tail(self.log_path, tail)


def process_env(
    settings: Settings, extra: Mapping[str, str] | None = None, *, service_name: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTEPIPE_")}
    env.update(settings.to_env())
    env["OTEL_SERVICE_NAME"] = service_name
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_worker(
    settings: Settings,
    log_dir: Path,
    *,
    index: int = 0,
    with_reconciler: bool = False,
    burst: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> PipelineProcess:
    cmd = [*NOTEPIPE, "worker"]
    if with_reconciler:
        cmd.append("--with-reconciler")
    if burst:
        cmd.append("--burst")
    name = f"worker-{index}"
    log_path = log_dir / f"{name}.log"
    env = process_env(settings, extra_env, service_name="notepipe-worker")
    proc = reaper.spawn(cmd, env=env, cwd=None, log_path=log_path)
    return PipelineProcess("worker", name, proc, log_path)


def start_reconciler(
    settings: Settings, log_dir: Path, *, extra_env: Mapping[str, str] | None = None
) -> PipelineProcess:
    log_path = log_dir / "reconciler.log"
    env = process_env(settings, extra_env, service_name="notepipe-reconciler")
    proc = reaper.spawn([*NOTEPIPE, "reconcile"], env=env, cwd=None, log_path=log_path)
    return PipelineProcess("reconciler", "reconciler", proc, log_path)


def start_api(
    settings: Settings,
    log_dir: Path,
    *,
    port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> PipelineProcess:
    port = port or free_port()
    log_path = log_dir / "api.log"
    env = process_env(settings, extra_env, service_name="notepipe-api")
    cmd = [*NOTEPIPE, "api", "--host", "127.0.0.1", "--port", str(port)]
    proc = reaper.spawn(cmd, env=env, cwd=None, log_path=log_path)
    api = PipelineProcess("api", "api", proc, log_path, url=f"http://127.0.0.1:{port}")

    def healthy() -> bool:
        if proc.poll() is not None:
            raise ServiceStartError(
                f"the API exited with code {proc.returncode} before it was ready.\n"
                f"--- {log_path} (tail) ---\n{api.logs()}"
            )
        return httpx.get(f"{api.url}/healthz", timeout=2).status_code == 200

    try:
        # Poll often: readiness is on every stack's start path, and a backoff to 0.5 s
        # noticed it up to half a second late.
        wait_until(
            healthy,
            ready_timeout,
            describe=f"the API on port {port}",
            transient=(httpx.HTTPError,),
            max_interval=0.1,
        )
    except BaseException:
        api.kill()
        raise
    return api


def registered_with_rq(client: redis.Redis[bytes], worker: PipelineProcess) -> bool:
    """Whether ``worker`` is registered with RQ now: its ``rq:worker:<name>`` key is in
    RQ's set of workers and present (found by pid, whatever its host part)."""
    keys: set[bytes] = client.smembers(rq_contract.all_workers_key())
    return any(
        worker.recorded_as(key.decode()[len(rq_contract.WORKER_PREFIX) :]) and client.exists(key)
        for key in keys
    )


def wait_worker_registered(redis_url: str, worker: PipelineProcess, timeout: float = 30.0) -> None:
    """Block until the worker shows up in RQ's worker registry."""
    client = redis.Redis.from_url(redis_url)
    try:

        def registered() -> bool:
            if not worker.alive():
                raise ServiceStartError(
                    f"{worker.name} exited with {worker.proc.returncode}:\n{worker.logs()}"
                )
            return registered_with_rq(client, worker)

        wait_until(
            registered, timeout, describe=f"{worker.name} to register with RQ", max_interval=0.1
        )
    finally:
        client.close()
