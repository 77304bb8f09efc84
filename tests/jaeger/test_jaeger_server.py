"""Finding, configuring, starting and reaping the real Jaeger."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest

from harness import reaper
from harness.errors import ServiceStartError
from harness.jaeger import JaegerNotFound, JaegerQuery, JaegerServer, find_jaeger, jaeger_config
from harness.jaeger.server import JaegerPorts


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_jaeger_prefers_option_then_env_then_peers_then_path(tmp_path: Path) -> None:
    option = _executable(tmp_path / "option" / "jaeger")
    env_bin = _executable(tmp_path / "env" / "jaeger")
    peers = _executable(tmp_path / "peers" / "jaeger")
    on_path = _executable(tmp_path / "path" / "jaeger")
    path, peers_dir = str(on_path.parent), str(peers.parent)
    env = {"NOTEPIPE_JAEGER_BIN": str(env_bin), "NOTEPIPE_PEERS_DIR": peers_dir, "PATH": path}

    assert find_jaeger(str(option), env) == option
    assert find_jaeger(None, env) == env_bin
    assert find_jaeger(None, {"NOTEPIPE_PEERS_DIR": peers_dir, "PATH": path}) == peers
    peers.unlink()
    assert find_jaeger(None, {"NOTEPIPE_PEERS_DIR": peers_dir, "PATH": path}) == on_path


def test_a_missing_jaeger_says_what_was_tried_and_how_to_build_it(tmp_path: Path) -> None:
    env = {"NOTEPIPE_PEERS_DIR": str(tmp_path / "none"), "PATH": str(tmp_path)}
    with pytest.raises(JaegerNotFound) as missing:
        find_jaeger(None, env)
    message = str(missing.value)
    assert "NOTEPIPE_JAEGER_BIN (not set)" in message
    assert "make peers" in message and "--notepipe-jaeger-endpoint" in message
    with pytest.raises(JaegerNotFound, match="not an executable file"):
        find_jaeger(str(tmp_path / "nope"), {})


def test_the_config_listens_on_loopback_only_and_keeps_spans_in_memory() -> None:
    config = jaeger_config(JaegerPorts(4001, 4002, 4003), max_traces=10)

    def endpoints(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [str(v) for k, v in node.items() if k == "endpoint"]
            return found + [e for v in node.values() for e in endpoints(v)]
        return []

    assert sorted(endpoints(config)) == ["127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"]
    assert config["receivers"] == {"otlp": {"protocols": {"http": {"endpoint": "127.0.0.1:4001"}}}}
    assert config["service"]["telemetry"]["metrics"] == {"level": "none"}
    assert config["extensions"]["jaeger_query"]["enable_tracing"] is False
    backend = config["extensions"]["jaeger_storage"]["backends"]["notepipe_memory"]
    assert backend == {"memory": {"max_traces": 10}}


@pytest.mark.jaeger
def test_jaeger_starts_on_loopback_ports_and_is_reaped(jaeger: JaegerServer) -> None:
    assert jaeger.proc is not None
    pid = jaeger.proc.pid
    assert jaeger.version().startswith("v1.")
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    ports = jaeger.ports
    assert listening == {
        ("127.0.0.1", ports.otlp_http),
        ("127.0.0.1", ports.query_http),
        ("127.0.0.1", ports.query_grpc),
    }
    with JaegerQuery(jaeger.query_url) as query:
        assert query.services() == []
    assert any(p.pid == pid for p in reaper.registered())  # killed at exit like the rest

    jaeger.stop()
    assert not reaper.pid_alive(pid)
    assert all(p.pid != pid for p in reaper.registered())


@pytest.mark.jaeger
def test_a_jaeger_that_cannot_start_fails_with_its_log(jaeger_binary: Path, tmp_path: Path) -> None:
    server = JaegerServer(jaeger_binary, workdir=tmp_path, ready_timeout=20)
    blocker = JaegerServer(jaeger_binary, workdir=tmp_path / "first").start()
    try:
        server.ports = blocker.ports  # every port taken
        with pytest.raises(ServiceStartError, match="address already in use"):
            server._start_once()
    finally:
        blocker.stop()
        server.stop()
    assert os.path.exists(server.log_path)
