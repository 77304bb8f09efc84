"""``notepipe-harness chaos``: play a fault schedule against a live ``stack up`` stack.

A running stack is one more target of the harness's fault classes (:mod:`harness.faults`):
``chaos`` drops the schedule into ``<state-dir>/chaos/`` and the ``stack up`` process, which
owns the :class:`~harness.stack.PipelineStack` and its services, plays it with the same
:class:`~harness.schedule.ScheduleRunner` as the scenarios (every fault healed in a
``finally``). The schedule is the scenarios' format, a JSON list of
``{"kind", "at", "duration", "target", "params"}`` (or ``{"seed", "faults": [...]}``);
the kinds of the former live-stack model are read as their fault classes
(``pause_redis`` → ``pause_service`` on ``redis``, ``pause_postgres``, ``restart_redis``).
A stack without proxies refuses the network faults.

Each fault becomes one JSON line in ``--out`` as it heals: the spec, the concrete
``target``, real ``start``/``end`` (unix seconds), ``ok`` and ``error``. Ctrl-C heals at
once. The exit code is 1 if a fault could not be applied or healed.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessConfigError
from harness.faults import FaultSpec
from harness.schedule import FaultRecord, Schedule, ScheduleRunner
from harness.stack import PipelineStack
from harness.wait import WaitTimeout, wait_until

#: Kinds of the former live-stack fault model, read as (fault class kind, target).
LEGACY_KINDS = {
    "pause_redis": ("pause_service", "redis"),
    "pause_postgres": ("pause_service", "postgres"),
    "restart_redis": ("restart_service", "redis"),
}


def _spec(item: Mapping[str, Any]) -> FaultSpec:
    if not isinstance(item, Mapping) or "kind" not in item:
        raise HarnessConfigError(f"a fault is an object with a 'kind', not {item!r}")
    data = dict(item)
    if data["kind"] in LEGACY_KINDS:
        data["kind"], data["target"] = LEGACY_KINDS[data["kind"]]
    return FaultSpec.from_dict(data)


def load_schedule(path: Path, seed: int) -> Schedule:
    """Read and validate a schedule file (every fault class checks its own spec)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessConfigError(f"cannot read fault schedule {path}: {exc}") from exc
    items = data.get("faults") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise HarnessConfigError(f"{path}: expected a list of faults or {{'faults': [...]}}")
    own_seed = data.get("seed") if isinstance(data, dict) else None
    return Schedule(
        [_spec(item) for item in items], seed=own_seed if own_seed is not None else seed
    )


def record_line(record: FaultRecord) -> dict[str, Any]:
    """A fault record for the JSONL file: unix-second times (Locust's clock), ``ok``."""
    return {
        **record.to_dict(),
        "start": record.start.timestamp(),
        "end": record.end.timestamp(),
        "ok": record.error is None,
    }


# ---------------------------------------------------------------- the stack's side
class ChaosInbox:
    """The ``stack up`` side: plays the schedules dropped into ``<state-dir>/chaos/``.

    ``poll()`` runs on the supervisor's loop; while a schedule runs the supervisor leaves
    the workers to the faults (their heal replaces what they killed)."""

    def __init__(self, stack: PipelineStack, state_dir: Path) -> None:
        self.stack = stack
        self.dir = state_dir / "chaos"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.running: dict[Path, ScheduleRunner] = {}

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def poll(self) -> None:
        for request in sorted(self.dir.glob("*.json")):
            if request not in self.running and not request.with_suffix(".done").exists():
                self._start(request)
        for request, runner in list(self.running.items()):
            if request.with_suffix(".stop").exists():
                runner.stop()
            if runner.done():
                self._finish(request, runner)

    def stop(self) -> None:
        """Heal every active fault (the stack is stopping)."""
        for request, runner in list(self.running.items()):
            runner.stop()
            self._finish(request, runner)

    def _start(self, request: Path) -> None:
        try:
            data = json.loads(request.read_text())
            schedule = Schedule([_spec(f) for f in data["faults"]], seed=data.get("seed"))
        except (ValueError, KeyError, HarnessConfigError) as exc:
            request.with_suffix(".done").write_text(json.dumps({"error": str(exc)}))
            return
        out = Path(data["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")

        def write(record: FaultRecord) -> None:
            with out.open("a") as fh:
                fh.write(json.dumps(record_line(record)) + "\n")

        runner = ScheduleRunner(self.stack, schedule, on_record=write)
        self.running[request] = runner
        runner.start()

    def _finish(self, request: Path, runner: ScheduleRunner) -> None:
        del self.running[request]
        summary = {"records": len(runner.records), "errors": runner.errors}
        request.with_suffix(".done").write_text(json.dumps(summary))


# ---------------------------------------------------------------- the command's side
def _stack_pid(state_dir: Path) -> int:
    state_file = state_dir / "stack.json"
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError) as exc:
        raise HarnessConfigError(
            f"no running stack recorded in {state_file} ({exc}); start one with "
            "`notepipe-harness stack up --state-dir DIR` and pass the same --state-dir"
        ) from None
    return pid


def _check_env_file(env_file: Path, state_dir: Path) -> None:
    """The env file and the state dir must describe the same stack (same API URL)."""
    try:
        lines = env_file.read_text().splitlines()
    except OSError as exc:
        raise HarnessConfigError(f"cannot read the env file {env_file}: {exc}") from None
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    state = json.loads((state_dir / "stack.json").read_text())
    if env.get("NOTEPIPE_API_URL") != state.get("api_url"):
        raise HarnessConfigError(
            f"{env_file} (API {env.get('NOTEPIPE_API_URL')}) is not the stack recorded in "
            f"{state_dir}/stack.json (API {state.get('api_url')}); pass the --state-dir "
            "given to `notepipe-harness stack up`"
        )


def run_chaos(
    state_dir: Path,
    schedule_path: Path,
    out: Path | None,
    *,
    seed: int = 0,
    env_file: Path | None = None,
) -> int:
    """Hand ``schedule_path`` to the stack in ``state_dir`` and wait until it is played."""
    pid = _stack_pid(state_dir)
    if env_file is not None:
        _check_env_file(env_file, state_dir)
    schedule = load_schedule(schedule_path, seed)
    out = (out or Path("reports") / f"faults-{time.strftime('%Y%m%dT%H%M%S')}.jsonl").resolve()
    inbox = state_dir / "chaos"
    inbox.mkdir(parents=True, exist_ok=True)
    request = inbox / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}.json"
    tmp = request.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"faults": schedule.to_list(), "seed": schedule.seed, "out": str(out)})
    )
    tmp.replace(request)
    print(f"notepipe chaos: {len(schedule.faults)} fault(s) against stack pid {pid} -> {out}")
    done = request.with_suffix(".done")
    previous = {
        sig: signal.signal(sig, lambda *_: request.with_suffix(".stop").touch())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def finished() -> bool:
        os.kill(pid, 0)  # ProcessLookupError: the stack is gone
        return done.exists()

    try:
        wait_until(finished, schedule.end + 120, describe="the stack to play the schedule")
    except (WaitTimeout, ProcessLookupError) as exc:
        print(f"notepipe chaos: the schedule did not finish: {exc}")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    summary = json.loads(done.read_text())
    for error in [summary["error"]] if "error" in summary else summary["errors"]:
        print(f"notepipe chaos: {error}")
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    failed = [r for r in records if not r["ok"]]
    for record in failed:
        print(f"notepipe chaos: {record['kind']} on {record['target']}: {record['error']}")
    ok = not failed and "error" not in summary and len(records) == len(schedule.faults)
    return 0 if ok else 1
