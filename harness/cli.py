"""``notepipe-harness``: the harness's commands against a pipeline (not part of it).

``stack up|down`` runs a local stack, ``chaos`` plays a fault schedule against it,
``capacity`` sweeps worker counts. The pipeline's own verbs stay in ``notepipe``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from notepipe.errors import NotepipeError
from notepipe.logs import setup_logging


def _cmd_stack(args: argparse.Namespace) -> int:
    from harness.commands.stack import DEFAULT_STATE_DIR, stack_down, stack_up

    state_dir = Path(args.state_dir) if args.state_dir else DEFAULT_STATE_DIR
    if args.stack_command == "up":
        return stack_up(
            workers=args.workers,
            api_port=args.api_port,
            env_file=Path(args.env_file) if args.env_file else None,
            state_dir=state_dir,
            otlp_endpoint=args.otlp_endpoint,
            pooler=args.pooler,
            chaos_stage=args.chaos_stage,
        )
    return stack_down(state_dir)


def _cmd_capacity(args: argparse.Namespace) -> int:
    from harness.commands.capacity import run_capacity

    return run_capacity(
        workers=args.workers, duration=args.duration, max_rate=args.max_rate, out=Path(args.out)
    )


def _cmd_chaos(args: argparse.Namespace) -> int:
    from harness.commands.chaos import run_chaos
    from harness.commands.stack import DEFAULT_STATE_DIR

    return run_chaos(
        Path(args.state_dir) if args.state_dir else DEFAULT_STATE_DIR,
        Path(args.schedule),
        Path(args.out) if args.out else None,
        seed=args.seed,
        env_file=Path(args.env_file) if args.env_file else None,
    )


def _add_chaos(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chaos = sub.add_parser("chaos", help="run a JSON fault schedule against a live stack")
    chaos.add_argument(
        "--schedule", required=True, help="JSON list of {kind, at, duration, target, params}"
    )
    chaos.add_argument("--env-file", default=None, help="the stack's env file (checked)")
    chaos.add_argument("--state-dir", default=None, help="the stack's --state-dir")
    chaos.add_argument("--out", default=None, help="JSONL of faults (default reports/faults-*)")
    chaos.add_argument("--seed", type=int, default=0)
    chaos.set_defaults(func=_cmd_chaos)


def _add_stack(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = sub.add_parser("stack", help="a local stack: Redis, PostgreSQL, API, workers")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_sub.add_parser("up", help="start everything; Ctrl-C stops it")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--api-port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--env-file", default=None, help="write NOTEPIPE_*_URL lines here when ready")
    up.add_argument("--state-dir", default=None, help="where logs and the pid file go")
    up.add_argument("--otlp-endpoint", default=None, help="export traces here (OTLP/HTTP)")
    up.add_argument(
        "--no-pooler",
        dest="pooler",
        action="store_false",
        help="pipeline processes connect to PostgreSQL directly, not through PgBouncer",
    )
    up.add_argument(
        "--chaos-stage",
        action="store_true",
        help="add the harness's chaos stage: a note's content can ask for slowness or "
        "failures ([chaos:sleep=0.5], [chaos:raise]; see harness/chaos_stage.py)",
    )
    down = stack_sub.add_parser("down", help="stop a stack started with --state-dir")
    down.add_argument("--state-dir", default=None)
    stack.set_defaults(func=_cmd_stack)


def _add_capacity(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    capacity = sub.add_parser("capacity", help="sweep worker counts, find the saturation point")
    capacity.add_argument("--workers", default="1,2,4", help="comma-separated worker counts")
    capacity.add_argument("--duration", default="60s", help="ramp length per worker count")
    capacity.add_argument("--max-rate", type=float, default=0.0, help="0: 20 posts/s per worker")
    capacity.add_argument("--out", default="reports", help="where the table and plot go")
    capacity.set_defaults(func=_cmd_capacity)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="notepipe-harness",
        description="Run and disturb a notepipe pipeline: a local stack, fault schedules "
        "against it, capacity sweeps. Pipeline settings: NOTEPIPE_* (see README).",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_stack(sub)
    _add_chaos(sub)
    _add_capacity(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except (HarnessError, NotepipeError) as exc:
        print(f"notepipe-harness: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(
            f"notepipe-harness: error: {exc}: the harness needs its extra, "
            "`pip install 'notepipe[harness]'`",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
