"""scripts/peers.sh without Go, and where the harness looks for the built peers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness import peers

SCRIPT = peers.REPO_ROOT / "scripts" / "peers.sh"


def run_script(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [str(SCRIPT)], check=False, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_without_go_the_builtins_stay_the_default() -> None:
    done = run_script(GO="/nonexistent/go")
    assert done.returncode == 0, done.stderr
    assert "Go not found at GO=/nonexistent/go" in done.stderr
    assert "built-ins stay the default" in done.stderr


def test_without_go_ci_fails() -> None:
    done = run_script(GO="/nonexistent/go", CI="true")
    assert done.returncode == 1
    assert "Go not found" in done.stderr
    assert "built-ins stay the default" not in done.stderr


def test_peer_binary_is_found_only_when_executable(tmp_path: Path) -> None:
    env = {peers.DIR_ENV: str(tmp_path)}
    assert peers.peers_dir(env) == tmp_path
    assert peers.peer_binary(peers.TOXIPROXY, env) is None
    binary = tmp_path / peers.TOXIPROXY
    binary.write_text("#!/bin/sh\n")
    assert peers.peer_binary(peers.TOXIPROXY, env) is None
    binary.chmod(0o755)
    assert peers.peer_binary(peers.TOXIPROXY, env) == binary
    assert peers.peers_dir({}) == peers.DEFAULT_DIR
    assert "make peers" in peers.missing_hint(peers.JAEGER)


def test_in_ci() -> None:
    assert peers.in_ci({"CI": "true"})
    assert not peers.in_ci({"CI": "false"})
    assert not peers.in_ci({})


def test_a_missing_peer_is_required_under_ci_or_where_go_can_build_it(tmp_path: Path) -> None:
    assert peers.required({"CI": "true", "PATH": str(tmp_path)})
    go = tmp_path / "go"
    go.write_text("#!/bin/sh\n")
    go.chmod(0o755)
    assert peers.go_available({"GO": str(go), "PATH": ""})
    assert peers.required({"GO": str(go), "PATH": ""})
    assert peers.go_available({"PATH": str(tmp_path)}), "go on PATH"
