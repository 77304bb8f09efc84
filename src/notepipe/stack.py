"""``notepipe stack up|down``: a complete local stack for demos and load tests.

Starts Redis and PostgreSQL as local server processes (temp data dirs, free
loopback ports, generated passwords), applies migrations, then the API, N
workers and the reconciler. Ctrl-C (or ``notepipe stack down``) stops
everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from notepipe.redact import redact_url
from notepipe.settings import Settings, load_settings

DEFAULT_STATE_DIR = Path(".notepipe") / "stack"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def stack_up(args: argparse.Namespace, base: Settings) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from harness.processes import start_api, start_reconciler, start_worker, wait_worker_registered
    from harness.services.local_pgbouncer import LocalPgBouncer, pgbouncer_binary
    from harness.services.local_postgres import LocalPostgres
    from harness.services.local_redis import LocalRedis
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    state_dir = Path(args.state_dir) if args.state_dir else DEFAULT_STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="logs-", dir=state_dir))
    extra_env = {"OTEL_EXPORTER_OTLP_ENDPOINT": args.otlp_endpoint} if args.otlp_endpoint else {}
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    redis = LocalRedis(appendonly=True)
    postgres = LocalPostgres()
    pooler = LocalPgBouncer(postgres) if args.pooler and pgbouncer_binary() else None
    if args.pooler and pooler is None:
        print(
            "notepipe: pgbouncer not found (apt-get install pgbouncer); the pipeline connects "
            "to PostgreSQL directly",
            file=sys.stderr,
        )
    processes = []
    try:
        # The servers start side by side, and the workers and the reconciler boot (import,
        # load the stages' models) while the API starts: readiness is the slowest of them.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(redis.start), pool.submit(postgres.start)]:
                future.result()
        if pooler is not None:
            pooler.start()
        phases = {"servers": time.monotonic() - started}
        # Pipeline processes reach PostgreSQL through the pooler (no backend fork and no
        # server-side SCRAM per connection; same password); migrations go direct.
        database_url = pooler.url if pooler is not None else postgres.url
        settings = load_settings(
            **{**base.model_dump(), "redis_url": redis.url, "database_url": database_url}
        )
        with connect(
            load_settings(**{**settings.model_dump(), "database_url": postgres.url})
        ) as conn:
            migrate(conn)
        for index in range(args.workers):
            processes.append(start_worker(settings, log_dir, index=index, extra_env=extra_env))
        processes.append(start_reconciler(settings, log_dir, extra_env=extra_env))
        api = start_api(settings, log_dir, port=args.api_port or None, extra_env=extra_env)
        processes.insert(0, api)
        phases["api"] = time.monotonic() - started
        for worker in processes:
            if worker.role == "worker":
                wait_worker_registered(settings.redis_dsn, worker)
        phases["workers"] = time.monotonic() - started
        env_lines = {
            "NOTEPIPE_API_URL": str(api.url),
            "NOTEPIPE_REDIS_URL": redis.url,
            "NOTEPIPE_DATABASE_URL": database_url,
            "NOTEPIPE_DIRECT_DATABASE_URL": postgres.url,
            "NOTEPIPE_QUEUE_NAME": settings.queue_name,
        }
        state = {
            "pid": os.getpid(),
            "api_url": api.url,
            "log_dir": str(log_dir),
            "processes": {p.name: p.pid for p in processes},
        }
        _write_atomic(state_dir / "stack.json", json.dumps(state, indent=2))
        if args.env_file:
            _write_atomic(Path(args.env_file), "".join(f"{k}={v}\n" for k, v in env_lines.items()))
        marks = ", ".join(f"{name} at {at:.1f}s" for name, at in phases.items())
        print(f"notepipe stack ready in {time.monotonic() - started:.1f}s ({marks})", flush=True)
        print(f"  API        {api.url}  (docs: {api.url}/docs)")
        print(f"  Redis      {redact_url(redis.url)}")
        print(f"  PostgreSQL {redact_url(postgres.url)}")
        if pooler is not None:
            print(f"  PgBouncer  {redact_url(pooler.url)} (the pipeline's DATABASE_URL)")
        print(f"  workers    {args.workers}, reconciler 1; logs in {log_dir}")
        if args.env_file:
            print(f"  env file   {args.env_file} (URLs with passwords)")
        print("Ctrl-C or `notepipe stack down` stops everything.", flush=True)
        while not stop.wait(1.0):
            restarted = False
            for index, process in enumerate(processes):
                if process.alive() or stop.is_set():
                    continue
                # Supervise: a crashed or killed process is replaced, as a process
                # manager would (chaos runs kill workers on purpose).
                print(
                    f"notepipe: {process.name} exited ({process.proc.returncode}); restarting it. "
                    f"Log tail:\n{process.logs(5)}",
                    file=sys.stderr,
                    flush=True,
                )
                processes[index] = _restart(process, settings, log_dir, extra_env, api_port=api.url)
                restarted = True
            if restarted:
                _write_atomic(
                    state_dir / "stack.json",
                    json.dumps(
                        {**state, "processes": {p.name: p.pid for p in processes}}, indent=2
                    ),
                )
        return 0
    finally:
        for process in reversed(processes):
            process.stop(grace=5)
        if pooler is not None:
            pooler.stop()
        postgres.stop()
        redis.stop()
        for path in (state_dir / "stack.json", Path(args.env_file) if args.env_file else None):
            if path is not None and path.exists():
                path.unlink()
        print("notepipe stack stopped", flush=True)


def _restart(
    process: Any,
    settings: Settings,
    log_dir: Path,
    extra_env: dict[str, str],
    *,
    api_port: str | None,
) -> Any:
    from harness.processes import start_api, start_reconciler, start_worker

    if process.role == "worker":
        index = int(process.name.rsplit("-", 1)[1])
        return start_worker(settings, log_dir, index=index, extra_env=extra_env)
    if process.role == "api":
        port = int(str(api_port).rsplit(":", 1)[1]) if api_port else None
        return start_api(settings, log_dir, port=port, extra_env=extra_env)
    return start_reconciler(settings, log_dir, extra_env=extra_env)


def stack_down(args: argparse.Namespace) -> int:
    from harness.wait import WaitTimeout, wait_until

    state_dir = Path(args.state_dir) if args.state_dir else DEFAULT_STATE_DIR
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
