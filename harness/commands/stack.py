"""``notepipe-harness stack up|down``: a complete local stack for demos and load tests.

A :class:`~harness.stack.PipelineStack` on local Redis and PostgreSQL server processes
(temp data dirs, free loopback ports, generated passwords) with the pipeline's own
settings (``NOTEPIPE_*``): migrations, then the API, N workers and the reconciler.
Processes that die are restarted under the same name, as a process manager would
(``notepipe-harness chaos`` kills workers on purpose). Ctrl-C, SIGTERM or
``notepipe-harness stack down`` stops everything it started.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.chaos_stage import CHAOS_STAGE
from harness.services.local_pgbouncer import LocalPgBouncer, pgbouncer_binary
from harness.services.local_postgres import LocalPostgres
from harness.services.local_redis import LocalRedis
from harness.stack import PipelineStack, StackOptions
from harness.wait import WaitTimeout, wait_until
from notepipe.redact import redact_url
from notepipe.settings import DEFAULT_STAGES

DEFAULT_STATE_DIR = Path(".notepipe") / "stack"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600: it may hold passwords) in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@contextmanager
def local_stack(
    workdir: Path,
    *,
    workers: int,
    api_port: int | None = None,
    env: dict[str, str] | None = None,
    settings: dict[str, Any] | None = None,
    pooler: bool = True,
) -> Iterator[PipelineStack]:
    """A started :class:`PipelineStack` on its own local Redis (AOF on) and PostgreSQL,
    with the pipeline's own settings (``NOTEPIPE_*`` plus ``settings``) and ``env`` added to
    its processes' environment; everything stopped on exit.

    With ``pooler`` (and ``pgbouncer`` installed) the pipeline's processes reach PostgreSQL
    through a real PgBouncer: no backend fork and no server-side SCRAM per connection
    (~5 ms of server CPU each); migrations and the harness go direct."""
    redis, postgres = LocalRedis(appendonly=True), LocalPostgres()
    bouncer = LocalPgBouncer(postgres) if pooler and pgbouncer_binary() else None
    if pooler and bouncer is None:
        print(
            "notepipe: pgbouncer not found (apt-get install pgbouncer); the pipeline connects "
            "to PostgreSQL directly",
            file=sys.stderr,
        )
    stack: PipelineStack | None = None
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:  # the servers start side by side
            for future in [pool.submit(redis.start), pool.submit(postgres.start)]:
                future.result()
        if bouncer is not None:
            bouncer.start()
        stack = PipelineStack(
            redis_service=redis,
            postgres_service=postgres,
            collector=None,
            workdir=workdir,
            options=StackOptions(
                workers=workers,
                settings=settings or {},
                defaults={},
                api_port=api_port,
                env=env or {},
                fresh_database=False,
            ),
            pooler=bouncer,
        )
        stack.start()
        yield stack
    finally:
        if stack is not None:
            for process in reversed(stack.processes()):
                process.stop(grace=5)
            stack.stop()
        if bouncer is not None:
            bouncer.stop()
        postgres.stop()
        redis.stop()


def _state(stack: PipelineStack) -> str:
    assert stack.api is not None
    return json.dumps(
        {
            "pid": os.getpid(),
            "api_url": stack.api.url,
            "log_dir": str(stack.log_dir),
            "processes": {p.name: p.pid for p in stack.processes()},
        },
        indent=2,
    )


def _print_ready(stack: PipelineStack, started: float, env_file: Path | None) -> None:
    assert stack.api is not None and stack.settings is not None
    print(f"notepipe stack ready in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  API        {stack.api.url}  (docs: {stack.api.url}/docs)")
    print(f"  Redis      {redact_url(stack.settings.redis_dsn)}")
    assert stack.direct_settings is not None
    print(f"  PostgreSQL {redact_url(stack.direct_settings.database_dsn)}")
    if stack.pooler is not None:
        print(
            f"  PgBouncer  {redact_url(stack.settings.database_dsn)} (the pipeline's DATABASE_URL)"
        )
    print(f"  workers    {len(stack.workers)}, reconciler 1; logs in {stack.log_dir}")
    if CHAOS_STAGE in stack.settings.stages:
        print("  chaos      stage on: a note's content can ask for [chaos:sleep=S], [chaos:raise]")
    if env_file:
        print(f"  env file   {env_file} (URLs with passwords)")
    print("Ctrl-C or `notepipe-harness stack down` stops everything.", flush=True)


def _supervise(stack: PipelineStack, stop: threading.Event, state_file: Path) -> None:
    """Restart dead processes until ``stop`` is set; keep the state file's pids current;
    play the fault schedules that ``notepipe-harness chaos`` hands over. While one plays,
    its faults own the workers (their heal replaces what they killed)."""
    from harness.commands.chaos import ChaosInbox

    inbox = ChaosInbox(stack, state_file.parent)
    written = _state(stack)
    try:
        while not stop.wait(0.5):
            inbox.poll()
            _restart_dead(stack, stop, skip_workers=inbox.busy)
            state = _state(stack)
            if state != written:  # restarted or replaced processes: new pids
                write_atomic(state_file, state)
                written = state
    finally:
        inbox.stop()


def _restart_dead(stack: PipelineStack, stop: threading.Event, *, skip_workers: bool) -> None:
    dead = [p for p in stack.processes() if not p.alive()]
    if skip_workers:
        dead = [p for p in dead if p.role != "worker"]
    for process in dead:
        if stop.is_set():
            return
        print(
            f"notepipe: {process.name} exited ({process.proc.returncode}); restarting it. "
            f"Log tail:\n{process.logs(5)}",
            file=sys.stderr,
            flush=True,
        )
        stack.restart(process)


def stages_with_chaos(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The stages ``NOTEPIPE_STAGES`` configures (else the pipeline's defaults) with the
    harness's chaos stage (:mod:`harness.chaos_stage`) last."""
    configured = environ.get("NOTEPIPE_STAGES", "")
    stages = tuple(s.strip() for s in configured.split(",") if s.strip()) or DEFAULT_STAGES
    return stages if CHAOS_STAGE in stages else (*stages, CHAOS_STAGE)


def stack_up(
    *,
    workers: int,
    api_port: int = 0,
    env_file: Path | None = None,
    state_dir: Path = DEFAULT_STATE_DIR,
    otlp_endpoint: str | None = None,
    pooler: bool = True,
    chaos_stage: bool = False,
) -> int:
    """Run a local stack in the foreground until SIGINT/SIGTERM. With ``chaos_stage`` a
    note's content can ask for slowness or failures (``[chaos:sleep=0.5]``): busy workers
    for ``notepipe-harness chaos`` to find."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "stack.json"
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="stack-", dir=state_dir))
    try:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint} if otlp_endpoint else {}
        settings = {"stages": stages_with_chaos(os.environ)} if chaos_stage else None
        with local_stack(
            workdir,
            workers=workers,
            api_port=api_port or None,
            env=env,
            settings=settings,
            pooler=pooler,
        ) as stack:
            assert stack.api is not None and stack.settings is not None
            assert stack.direct_settings is not None
            write_atomic(state_file, _state(stack))
            if env_file:
                lines = {
                    "NOTEPIPE_API_URL": str(stack.api.url),
                    "NOTEPIPE_REDIS_URL": stack.settings.redis_dsn,
                    "NOTEPIPE_DATABASE_URL": stack.settings.database_dsn,
                    "NOTEPIPE_DIRECT_DATABASE_URL": stack.direct_settings.database_dsn,
                    "NOTEPIPE_QUEUE_NAME": stack.settings.queue_name,
                }
                write_atomic(env_file, "".join(f"{k}={v}\n" for k, v in lines.items()))
            _print_ready(stack, started, env_file)
            _supervise(stack, stop, state_file)
        return 0
    finally:
        for path in (state_file, env_file):
            if path is not None:
                path.unlink(missing_ok=True)
        print("notepipe stack stopped", flush=True)


def stack_down(state_dir: Path = DEFAULT_STATE_DIR) -> int:
    """SIGTERM the stack recorded in ``state_dir`` and wait until it is gone."""
    state_file = state_dir / "stack.json"
    if not state_file.exists():
        print(f"notepipe: no running stack recorded in {state_file}", file=sys.stderr)
        return 1
    pid = int(json.loads(state_file.read_text())["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        state_file.unlink(missing_ok=True)
        print(f"notepipe: the stack (pid {pid}) was not running; cleaned {state_file}")
        return 0

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_until(gone, 60, describe=f"the stack (pid {pid}) to stop")
    except WaitTimeout:
        print(f"notepipe: the stack (pid {pid}) did not stop in 60 s", file=sys.stderr)
        return 1
    print("notepipe stack stopped")
    return 0
