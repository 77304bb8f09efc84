"""Where the real peers of the harness's built-ins are: the binaries ``scripts/peers.sh``
builds into ``.peers/bin`` (the real ``toxiproxy-server`` and ``jaeger``).

``NOTEPIPE_PEERS_DIR`` overrides the folder (e.g. one shared build for several
checkouts). Nothing here builds anything: run ``make peers``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DIR_ENV = "NOTEPIPE_PEERS_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".peers" / "bin"
TOXIPROXY = "toxiproxy-server"
JAEGER = "jaeger"


def peers_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder the peers are built into (``$NOTEPIPE_PEERS_DIR`` or ``.peers/bin``)."""
    value = (os.environ if env is None else env).get(DIR_ENV)
    return Path(value) if value else DEFAULT_DIR


def peer_binary(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The built peer ``name`` (``toxiproxy-server`` or ``jaeger``), or None if not built."""
    path = peers_dir(env) / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def missing_hint(name: str) -> str:
    return (
        f"the real {name} is not built in {peers_dir()}; run `make peers` (needs Go >= 1.24.6 "
        f"and the Go module proxy), or set {DIR_ENV} to a folder holding {name}"
    )


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    """True under CI (``CI=true``), where a missing peer fails instead of skipping."""
    return (os.environ if env is None else env).get("CI", "").lower() == "true"
