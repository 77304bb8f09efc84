"""``notepipe chaos``: run a fault schedule against a live ``notepipe stack up`` stack.

The schedule is a JSON list of faults, each ``{"kind", "at", "duration", "target"}``
(seconds from the start of the chaos run; ``target`` defaults to ``any``)::

    [{"kind": "pause_worker", "at": 10, "duration": 5},
     {"kind": "kill_horse", "at": 20},
     {"kind": "restart_redis", "at": 30, "duration": 3}]

Kinds (signals on the pids the stack records in ``<state-dir>/stack.json``):

* ``kill_horse``: SIGKILL the work-horse of a busy worker (waits up to ``duration``,
  default 5 s, for one); the worker survives. RQ's horse calls ``setpgrp``, so group
  signals miss it: it is found through ``/proc/<pid>/task/<pid>/children`` (the child
  leading its own group; RQ's scheduler is a child too, in the worker's group).
* ``kill_worker``: SIGKILL a worker and its horse. ``stack up`` treats a dead
  process as fatal and stops the whole stack, so use this only when that is the test.
* ``pause_worker`` / ``pause_api`` / ``pause_reconciler``: SIGSTOP the process
  group and its descendants for ``duration``, then SIGCONT.
* ``pause_redis`` / ``pause_postgres``: the same for the server (all its processes).
* ``restart_redis``: SIGKILL redis-server, keep it down for ``duration``, start it
  again with its own config (same port, password, AOF data). The new server is
  watched by a small detached process that stops it when the stack exits.
  Workers ride out the outage (they restart RQ's loop with backoff).

``target`` picks the process: a name from ``stack.json`` (``worker-0``), ``any``
(seeded random worker) or ``all`` (every worker). Every fault is healed in a
``finally`` (Ctrl-C heals at once) and recorded as one JSON line with its real
start and end (unix seconds) in ``--out`` (default ``reports/faults-<time>.jsonl``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notepipe.errors import ConfigurationError

PAUSE_KINDS = {
    "pause_worker": "worker",
    "pause_api": "api",
    "pause_reconciler": "reconciler",
    "pause_redis": "redis-server",
    "pause_postgres": "postgres",
}
KINDS = frozenset({"kill_horse", "kill_worker", "restart_redis", *PAUSE_KINDS})

# Runs detached: owns the restarted redis-server, stops it when the stack pid is gone.
_REDIS_WATCHDOG = """
import os, signal, subprocess, sys, time
stack = int(sys.argv[1])
with open(sys.argv[2], "ab") as log:
    proc = subprocess.Popen(sys.argv[3:], stdout=log, stderr=subprocess.STDOUT)
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
while proc.poll() is None and alive(stack):
    time.sleep(0.5)
if proc.poll() is None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
"""


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    at: float
    duration: float = 0.0
    target: str = "any"

    @classmethod
    def parse(cls, data: Any) -> FaultSpec:
        if not isinstance(data, dict) or "kind" not in data or "at" not in data:
            raise ConfigurationError(f"a fault needs at least 'kind' and 'at': {data!r}")
        unknown = set(data) - {"kind", "at", "duration", "target"}
        if unknown:
            raise ConfigurationError(f"fault has unknown keys {sorted(unknown)}: {data!r}")
        spec = cls(
            str(data["kind"]),
            float(data["at"]),
            float(data.get("duration", 0.0)),
            str(data.get("target", "any")),
        )
        if spec.kind not in KINDS:
            raise ConfigurationError(
                f"unknown fault kind {spec.kind!r}; valid: {', '.join(sorted(KINDS))}"
            )
        if spec.at < 0 or spec.duration < 0:
            raise ConfigurationError(f"fault {spec.kind}: 'at' and 'duration' must be >= 0")
        return spec


def load_schedule(path: Path) -> list[FaultSpec]:
    try:
        items = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the fault schedule {path}: {exc}") from None
    if not isinstance(items, list):
        raise ConfigurationError(f"{path}: the schedule must be a JSON list of faults")
    return sorted((FaultSpec.parse(item) for item in items), key=lambda s: s.at)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        kids = children(frontier.pop())
        found.extend(kids)
        frontier.extend(kids)
    return found


def horses(worker: int) -> list[int]:
    """A worker's work-horses: the children leading their own process group (RQ's horse
    calls ``setpgrp``; RQ's scheduler, also a child of the worker holding the scheduler
    lock, stays in the worker's group)."""
    found = []
    for pid in children(worker):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                found.append(pid)
    return found


def _accepts(port: int, timeout: float) -> bool:
    """Whether 127.0.0.1:``port`` accepts a TCP connection within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class LiveStack:
    """The processes of a running ``stack up``, from its ``stack.json``."""

    def __init__(self, state_dir: Path) -> None:
        state_file = state_dir / "stack.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"no running stack recorded in {state_file} ({exc}); start one with "
                "`notepipe stack up --state-dir DIR` and pass the same --state-dir"
            ) from None
        self.pid = int(state["pid"])
        self.processes: dict[str, int] = {k: int(v) for k, v in state["processes"].items()}
        if not self.alive(self.pid):
            raise ConfigurationError(f"the stack recorded in {state_file} (pid {self.pid}) is gone")
        self._redis: int | None = None
        self._lock = threading.Lock()

    @staticmethod
    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def workers(self, target: str, rng: random.Random) -> list[int]:
        names = sorted(n for n in self.processes if n.startswith("worker"))
        if target == "all":
            return [self.processes[n] for n in names]
        if target == "any":
            return [self.processes[rng.choice(names)]]
        if target not in self.processes:
            raise ConfigurationError(f"no process {target!r}; known: {sorted(self.processes)}")
        return [self.processes[target]]

    def role_pids(self, role: str, target: str, rng: random.Random) -> list[int]:
        """Leaders to pause: workers by target; API/reconciler; a server by its name."""
        if role == "worker":
            return self.workers(target, rng)
        if role in self.processes:
            return [self.processes[role]]
        if role == "redis-server":
            return [self.redis_pid()]
        found = [pid for pid in children(self.pid) if _comm(pid) == role]
        if not found:
            raise ConfigurationError(f"no {role} process under the stack (pid {self.pid})")
        return found

    def redis_pid(self) -> int:
        with self._lock:
            if self._redis is None or not self.alive(self._redis):
                found = [p for p in descendants(self.pid) if _comm(p) == "redis-server"]
                if not found:
                    raise ConfigurationError(f"no redis-server under the stack (pid {self.pid})")
                self._redis = found[0]
            return self._redis

    def set_redis_pid(self, pid: int) -> None:
        with self._lock:
            self._redis = pid


@dataclass
class FaultRecord:
    kind: str
    target: str
    at: float
    start: float
    end: float | None = None
    pids: tuple[int, ...] = ()
    ok: bool = True
    detail: str = ""

    def as_json(self) -> str:
        return json.dumps(self.__dict__ | {"pids": list(self.pids)}, sort_keys=True)


class ChaosRunner:
    """Plays a schedule: one thread per fault, heal in ``finally``, records to JSONL."""

    def __init__(
        self, stack: LiveStack, schedule: list[FaultSpec], out: Path, seed: int = 0
    ) -> None:
        self.stack = stack
        self.schedule = schedule
        self.out = out
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self._write_lock = threading.Lock()
        self.records: list[FaultRecord] = []

    def run(self, on_event: Callable[[str], None] = print) -> list[FaultRecord]:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        threads = [
            threading.Thread(target=self._play, args=(spec, on_event), daemon=True)
            for spec in self.schedule
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        return self.records

    def _sleep_until(self, offset: float) -> bool:
        """Wait until ``offset`` s after the start; False if the run was stopped."""
        return not self.stop.wait(max(0.0, self.t0 + offset - time.monotonic()))

    def _play(self, spec: FaultSpec, on_event: Callable[[str], None]) -> None:
        if not self._sleep_until(spec.at):
            return
        record = FaultRecord(spec.kind, spec.target, spec.at, time.time())
        try:
            with self._inject(spec, record):
                on_event(f"t+{spec.at:g}s {spec.kind} {spec.target} pids={list(record.pids)}")
                if spec.duration and spec.kind not in ("kill_horse", "kill_worker"):
                    self._sleep_until(spec.at + spec.duration)
        except Exception as exc:
            record.ok, record.detail = False, f"{type(exc).__name__}: {exc}"
            on_event(f"t+{spec.at:g}s {spec.kind} failed: {record.detail}")
        finally:
            record.end = time.time()
            with self._write_lock, open(self.out, "a") as f:
                f.write(record.as_json() + "\n")
                self.records.append(record)

    @contextlib.contextmanager
    def _inject(self, spec: FaultSpec, record: FaultRecord) -> Iterator[None]:
        if spec.kind in PAUSE_KINDS:
            leaders = self.stack.role_pids(PAUSE_KINDS[spec.kind], spec.target, self.rng)
            pids = [p for leader in leaders for p in (leader, *descendants(leader))]
            record.pids = tuple(pids)
            _signal(pids, signal.SIGSTOP)
            try:
                yield
            finally:
                _signal(pids, signal.SIGCONT)
        elif spec.kind == "kill_worker":
            for leader in self.stack.workers(spec.target, self.rng):
                pids = [leader, *descendants(leader)]
                record.pids += tuple(pids)
                _signal(pids, signal.SIGKILL)
            yield
        elif spec.kind == "kill_horse":
            record.pids = self._kill_horse(spec)
            if not record.pids:
                record.ok, record.detail = False, "no busy worker (no work-horse) found"
            yield
        else:  # restart_redis
            yield from self._restart_redis(spec, record)

    def _kill_horse(self, spec: FaultSpec) -> tuple[int, ...]:
        deadline = time.monotonic() + (spec.duration or 5.0)
        while not self.stop.is_set():
            workers = self.stack.workers("all" if spec.target == "any" else spec.target, self.rng)
            busy = [w for w in workers if horses(w)]
            if busy:
                found = horses(self.rng.choice(busy))
                _signal(found, signal.SIGKILL)
                return tuple(found)
            if time.monotonic() >= deadline:
                return ()
            time.sleep(0.01)
        return ()

    def _restart_redis(self, spec: FaultSpec, record: FaultRecord) -> Iterator[None]:
        pid = self.stack.redis_pid()
        # redis-server retitles itself; LocalRedis keeps redis.conf next to redis.log.
        # /proc/<pid>/exe is redis-check-rdb on Debian (one binary; argv[0] picks the mode)
        binary = shutil.which("redis-server") or os.readlink(f"/proc/{pid}/exe")
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2]
        port = int(title[0].rsplit(b":", 1)[1]) if title and b":" in title[0] else None
        log = os.readlink(f"/proc/{pid}/fd/1")
        cwd = str(Path(log).parent)
        argv = [binary, str(Path(cwd) / "redis.conf")]
        if not Path(argv[1]).exists():
            raise ConfigurationError(f"cannot restart redis-server (pid {pid}): no {argv[1]}")
        record.pids = (pid,)
        os.kill(pid, signal.SIGKILL)
        try:
            yield
        finally:
            watchdog = subprocess.Popen(
                [sys.executable, "-c", _REDIS_WATCHDOG, str(self.stack.pid), log, *argv],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not children(watchdog.pid):
                time.sleep(0.02)
            new = children(watchdog.pid)
            if new:
                self.stack.set_redis_pid(new[0])
                record.pids += (new[0],)
            if port is not None and not _accepts(port, timeout=10):
                raise ConfigurationError(
                    f"redis-server did not come back on port {port}; see {log}"
                )
            record.detail = f"restarted by watchdog pid {watchdog.pid}"


def _check_env_file(env_file: Path, state_dir: Path) -> None:
    """The env file and the state dir must describe the same stack (same API URL)."""
    try:
        lines = env_file.read_text().splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the env file {env_file}: {exc}") from None
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    state = json.loads((state_dir / "stack.json").read_text())
    if env.get("NOTEPIPE_API_URL") != state.get("api_url"):
        raise ConfigurationError(
            f"{env_file} (API {env.get('NOTEPIPE_API_URL')}) is not the stack recorded in "
            f"{state_dir}/stack.json (API {state.get('api_url')}); pass the --state-dir "
            "given to `notepipe stack up`"
        )


def run_chaos(
    state_dir: Path,
    schedule_path: Path,
    out: Path | None,
    seed: int = 0,
    env_file: Path | None = None,
) -> list[FaultRecord]:
    """Play ``schedule_path`` against the stack in ``state_dir``; SIGINT/SIGTERM heal at once."""
    stack = LiveStack(state_dir)
    if env_file is not None:
        _check_env_file(env_file, state_dir)
    schedule = load_schedule(schedule_path)
    out = out or Path("reports") / f"faults-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    runner = ChaosRunner(stack, schedule, out, seed)
    previous = {
        sig: signal.signal(sig, lambda *_: runner.stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(f"notepipe chaos: {len(schedule)} fault(s) against stack pid {stack.pid} -> {out}")
        return runner.run()
    finally:
        runner.stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
