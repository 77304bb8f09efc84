"""Where the real peers of the harness's built-ins are: the binaries ``scripts/peers.sh``
builds into ``.peers/bin`` (the real ``toxiproxy-server`` and ``jaeger``).

``NOTEPIPE_PEERS_DIR`` overrides the folder (e.g. one shared build for several
checkouts). Nothing here builds anything: run ``make peers``.
"""

from __future__ import annotations

import os
import shutil
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
    """True under CI (``CI=true``)."""
    return (os.environ if env is None else env).get("CI", "").lower() == "true"


def go_available(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``scripts/peers.sh`` can build the peers here (it looks for Go the same way:
    ``$GO``, ``go`` on PATH, then ``/usr/local/go/bin/go``)."""
    env = os.environ if env is None else env
    candidates = [env.get("GO"), shutil.which("go", path=env.get("PATH")), "/usr/local/go/bin/go"]
    return any(c and os.path.isfile(c) and os.access(c, os.X_OK) for c in candidates)


def required(env: Mapping[str, str] | None = None) -> bool:
    """Whether a test needing a peer must fail, not skip, when it is missing: under CI, and
    wherever Go could build it (a skip there would hide a forgotten ``make peers``)."""
    return in_ci(env) or go_available(env)
