"""``python -m harness.proxy`` / ``notepipe-toxiproxy``: the toxiproxy-server command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.proxy.api import VERSION
from harness.proxy.server import ProxyServer, run


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Go ``flag`` style: ``-host x``, ``-host=x`` and ``--host x`` all work."""
    parser = argparse.ArgumentParser(
        prog="notepipe-toxiproxy", description="A Toxiproxy 2.12 compatible server."
    )
    parser.add_argument("-host", "--host", default="localhost", help="host for the API")
    parser.add_argument("-port", "--port", type=int, default=8474, help="port for the API (0: any)")
    parser.add_argument("-config", "--config", type=Path, help="JSON file of proxies to create")
    parser.add_argument("-seed", "--seed", type=int, help="ignored, like upstream")
    for flag in ("proxy-metrics", "runtime-metrics", "version"):
        parser.add_argument(
            f"-{flag}", f"--{flag}", nargs="?", const=True, default=False, type=_bool
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.version:
        print(f"toxiproxy-server version {VERSION}")
        return 0
    level = os.environ.get("LOG_LEVEL", "info").upper()
    logging.basicConfig(
        level=getattr(logging, "WARNING" if level == "WARN" else level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    server = ProxyServer(
        args.host,
        args.port,
        proxy_metrics=bool(args.proxy_metrics),
        runtime_metrics=bool(args.runtime_metrics),
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(run(server, args.config))
    else:
        uvloop.run(run(server, args.config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
