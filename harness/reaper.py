"""Every process the harness starts, and the guarantee that none outlives it.

:func:`spawn` starts a command in its own session (so its process group id is
its pid), sends its output to a log file and registers it. :func:`reap_all`
kills every registered process group (SIGTERM, a short grace, then SIGKILL).
It runs at interpreter exit and on SIGTERM/SIGHUP, after which the previous
handler runs (or the default action, re-raised). A SIGKILL of the harness
itself cannot be caught; nothing here survives that.

A signal the harness was started with *ignored* stays ignored: ``nohup pytest …``
asks the run to survive a hangup, so a SIGHUP then neither reaps nor ends anything,
and the run's processes are reaped when it ends (at exit, or on SIGTERM). Tests of
the SIGHUP path set the disposition they mean to test in the process they start.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import functools
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

DEFAULT_GRACE = 3.0
#: psutil states of a process that is dead but not yet reaped.
DEAD_STATES = frozenset({psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD})

_lock = threading.RLock()
_registry: dict[int, subprocess.Popen[bytes]] = {}
_prior_handlers: dict[int, Any] = {}
_installed = False


def log_tail(path: Path, lines: int, *, missing: str = "") -> str:
    """The last ``lines`` lines of a process's log file (``missing`` if it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return missing
    return "\n".join(text.splitlines()[-lines:])


def spawn(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    cwd: Path | str | None,
    log_path: Path,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a new session, stdout+stderr appended to ``log_path``, and register it.

    ``user`` (a system account name) runs the command as that user and its
    primary group; it needs root unless it is the current user.
    """
    install()
    creds: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        if entry.pw_uid != os.geteuid():
            creds = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **creds,
        )
    register(proc)
    return proc


def register(proc: subprocess.Popen[bytes]) -> None:
    """Track ``proc``; it must lead its own process group (``start_new_session=True``)."""
    install()
    with _lock:
        _registry[proc.pid] = proc


def unregister(proc: subprocess.Popen[bytes]) -> None:
    """Stop tracking ``proc`` (after the caller stopped it itself)."""
    with _lock:
        _registry.pop(proc.pid, None)


def registered() -> list[subprocess.Popen[bytes]]:
    with _lock:
        return list(_registry.values())


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> bool:
    """Send ``sig`` to ``proc``'s process group; False when the group is gone."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a live (non-zombie) process of ``proc``'s group remains; reaps ``proc``."""
    proc.poll()
    if not signal_group(proc, 0):
        return False
    members = live_group_members(proc.pid)
    return True if members is None else bool(members)  # cannot list: trust kill(0)


def live_group_members(pgid: int) -> list[int] | None:
    """Pids of the live (not zombie) processes in group ``pgid``; None where psutil cannot
    list processes.

    Zombies are skipped: orphans reparented to a PID 1 that never reaps them
    (common in containers) stay in the group but are dead.
    """
    try:
        candidates = list(psutil.process_iter(["status"]))
    except psutil.Error:
        return None
    members = []
    for process in candidates:
        if process.info["status"] in DEAD_STATES:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == pgid:
                members.append(process.pid)
    return members


def terminate(
    proc: subprocess.Popen[bytes],
    *,
    sig: int = signal.SIGTERM,
    grace: float = DEFAULT_GRACE,
    leader_only: bool = False,
    before_kill: Callable[[], object] | None = None,
) -> None:
    """Send ``sig`` to the group (or only its leader), wait ``grace`` s, then SIGKILL.

    Descendants that left the group (setsid) are resumed if stopped, and
    SIGKILLed with the group on escalation (or at once when ``sig`` is
    SIGKILL); ``before_kill`` runs first (e.g. to ask for a stack dump). Returns
    once none of them is alive; unregisters ``proc``.
    """
    try:
        _terminate_groups([proc], sig, grace, leader_only=leader_only, before_kill=before_kill)
    finally:
        unregister(proc)


def reap_all(grace: float = DEFAULT_GRACE) -> None:
    """Kill every registered process group: SIGTERM, ``grace`` seconds, then SIGKILL."""
    procs = registered()
    try:
        _terminate_groups(procs, signal.SIGTERM, grace)
    finally:
        for proc in procs:
            unregister(proc)


def _terminate_groups(
    procs: list[subprocess.Popen[bytes]],
    sig: int,
    grace: float,
    *,
    leader_only: bool = False,
    before_kill: Callable[[], object] | None = None,
) -> None:
    if sig == signal.SIGKILL:
        for proc in procs:
            signal_group(proc, signal.SIGSTOP)  # no new children while we look for them
    family = {proc.pid: descendants(proc.pid) for proc in procs}
    for proc in procs:
        if sig == signal.SIGKILL:
            _kill_family(proc, family[proc.pid])
            continue
        if not leader_only:
            signal_group(proc, sig)
        elif proc.poll() is None:  # never signal a reaped (maybe reused) pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
        # A stopped process acts on sig only once resumed; the leader may need its children.
        signal_group(proc, signal.SIGCONT)
        for pid in family[proc.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def alive(proc: subprocess.Popen[bytes]) -> bool:
        return group_alive(proc) or any(pid_alive(pid) for pid in family[proc.pid])

    deadline = time.monotonic() + grace
    remaining = [p for p in procs if alive(p)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = [p for p in remaining if alive(p)]
    if remaining and before_kill is not None:
        before_kill()
    for proc in remaining:
        _kill_family(proc, family[proc.pid])
    while remaining and time.monotonic() < deadline + grace:
        remaining = [p for p in remaining if alive(p)]
        time.sleep(0.01)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)


def _kill_family(proc: subprocess.Popen[bytes], family: list[int]) -> None:
    signal_group(proc, signal.SIGKILL)
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def signal_tree(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to ``proc``'s group and to every descendant, even those in other groups.

    Some servers put their children in groups of their own (postgres backends
    call setsid(), as do RQ work horses), so a group signal alone misses them.
    """
    signal_group(proc, sig)
    for pid in descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def signal_main_thread(pid: int, sig: int) -> None:
    """Send ``sig`` to the main thread of process ``pid`` (its thread id is ``pid``) with
    glibc's ``tgkill``: only that thread may take it. Falls back to ``os.kill`` (any
    thread) where libc has no ``tgkill``; a process already gone is not an error."""
    tgkill = getattr(_libc(), "tgkill", None)
    if tgkill is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return
    if tgkill(pid, pid, sig) != 0:
        err = ctypes.get_errno()
        if err != errno.ESRCH:
            raise OSError(err, f"tgkill({pid}, {pid}, {sig}): {os.strerror(err)}")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() not in DEAD_STATES
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (children first); [] if ``pid`` is gone."""
    try:
        found = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    alive = []
    for child in found:
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() not in DEAD_STATES:
                alive.append(child.pid)
    return alive


def install() -> None:
    """Register :func:`reap_all` at exit and on SIGTERM/SIGHUP (idempotent).

    Signal handlers can only be set from the main thread; elsewhere only the
    atexit hook is installed. A signal whose disposition is "ignore" is left
    alone.
    """
    global _installed  # noqa: PLW0603
    with _lock:
        if _installed:
            return
        _installed = True
        atexit.register(reap_all)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP):
            prior = signal.getsignal(signum)
            if prior is signal.SIG_IGN:
                continue
            _prior_handlers[signum] = prior
            signal.signal(signum, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    reap_all()
    prior = _prior_handlers.get(signum)
    if callable(prior):
        prior(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
