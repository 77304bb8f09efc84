"""``notepipe``: the command line of the pipeline."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import sys
from collections.abc import Sequence

from notepipe.contracts.signals import STACK_DUMP_SIGNAL
from notepipe.errors import NotepipeError
from notepipe.logs import setup_logging
from notepipe.settings import Settings, load_settings


def _cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from notepipe.api.app import create_app
    from notepipe.telemetry import configure_telemetry

    tracing = configure_telemetry(
        "notepipe-api", redis_spans=settings.trace_redis, db_spans=settings.trace_db
    )
    app = create_app(settings)
    if tracing:  # with tracing off the middleware would only cost time per request
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port if args.port is not None else settings.api_port,
        log_level=args.log_level.lower(),
        access_log=args.access_log,
    )
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from notepipe.queue.worker import run_worker
    from notepipe.telemetry import configure_telemetry

    configure_telemetry(
        "notepipe-worker", redis_spans=settings.trace_redis, db_spans=settings.trace_db
    )
    run_worker(
        settings,
        burst=args.burst,
        with_reconciler=args.with_reconciler,
        max_jobs=args.max_jobs,
        logging_level=args.log_level,
    )
    return 0


def _cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from notepipe.queue.connection import redis_connection
    from notepipe.reconcile import Reconciler, run_forever
    from notepipe.store.db import connect
    from notepipe.telemetry import configure_telemetry, shutdown_telemetry

    configure_telemetry(
        "notepipe-reconciler", redis_spans=settings.trace_redis, db_spans=settings.trace_db
    )
    redis = redis_connection(settings)
    try:
        if args.once:
            with connect(settings) as conn:
                report = Reconciler(settings, conn, redis).run_pass()
            print(json.dumps(report.as_dict()))
            return 1 if report.errors else 0
        with contextlib.suppress(KeyboardInterrupt):
            run_forever(settings, lambda: connect(settings), redis)
        return 0
    finally:
        shutdown_telemetry()


def _cmd_migrate(_: argparse.Namespace, settings: Settings) -> int:
    from notepipe.store.db import connect
    from notepipe.store.migrate import migrate

    with connect(settings) as conn:
        applied = migrate(conn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from notepipe.status_view import print_status

    return print_status(settings, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notepipe",
        description="An RQ note-enrichment pipeline with a PostgreSQL ledger. "
        "Configure with NOTEPIPE_* environment variables (see README).",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    api = sub.add_parser("api", help="serve the HTTP API (uvicorn)")
    api.add_argument("--host", default=None, help="default NOTEPIPE_API_HOST (127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="default NOTEPIPE_API_PORT (8000)")
    api.add_argument("--access-log", action="store_true", help="log every request")
    api.set_defaults(func=_cmd_api)

    worker = sub.add_parser("worker", help="run an RQ worker on the note queue")
    worker.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    worker.add_argument("--with-reconciler", action="store_true", help="also run the reconciler")
    worker.add_argument("--max-jobs", type=int, default=None)
    worker.set_defaults(func=_cmd_worker)

    reconcile = sub.add_parser("reconcile", help="repair what Redis lost (loop, or --once)")
    reconcile.add_argument("--once", action="store_true", help="one pass, print a JSON report")
    reconcile.set_defaults(func=_cmd_reconcile)

    migrate = sub.add_parser("migrate", help="apply the ledger's SQL migrations")
    migrate.set_defaults(func=_cmd_migrate)

    status = sub.add_parser("status", help="queue, registries, workers and ledger counts")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)
    return parser


#: Verbs that moved to ``notepipe-harness`` (the harness's tools, not the pipeline's).
#: The old spellings still work: the command line is handed over to the harness's own
#: program, without importing it (``src/notepipe`` imports nothing from ``harness``).
HARNESS_VERBS = frozenset({"stack", "chaos", "capacity"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in HARNESS_VERBS:
        os.execv(sys.executable, [sys.executable, "-m", "harness.cli", *argv])  # noqa: S606
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    # `kill -USR1 <pid>`: every thread's stack to stderr (the process log), and the process
    # goes on; what a process that will not stop is doing (its forks inherit it).
    faulthandler.register(STACK_DUMP_SIGNAL, all_threads=True)
    try:
        settings = load_settings()
        return int(args.func(args, settings))
    except NotepipeError as exc:
        print(f"notepipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
