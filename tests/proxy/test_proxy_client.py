"""Check 27: the toxiproxy-python 0.1.1 flow, unchanged; and our typed client and launcher."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.errors import ServiceStartError
from harness.proxy.client import ToxiproxyClient
from harness.proxy.errors import ToxiproxyError
from harness.proxy.launcher import EXPECT_ENV, ToxiproxyServer
from tests.proxy.proxy_helpers import TcpServer, connect, recv_until_closed, round_trip


@pytest.fixture
def library(proxy_server: ToxiproxyServer) -> Iterator[toxiproxy.Toxiproxy]:
    client = ToxiproxyClient(proxy_server.url)
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer(client.host, client.port)
    try:
        yield server
    finally:
        server.destroy_all()
        client.close()


def test_toxiproxy_python_flow(library: toxiproxy.Toxiproxy, echo_server: TcpServer) -> None:
    assert library.running() is True
    assert library.version() == b'{"version": "2.12.0"}\n'
    proxy = library.create(upstream=echo_server.address, name="lib")
    assert proxy.listen.startswith("127.0.0.1:") and proxy.enabled is True
    with pytest.raises(ProxyExists):
        library.create(upstream=echo_server.address, name="lib")
    assert set(library.proxies()) == {"lib"}
    assert library.get_proxy("lib").listen == proxy.listen
    port = int(proxy.listen.rsplit(":", 1)[1])

    proxy.add_toxic(type="latency", attributes={"latency": 120})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes == {"latency": 120, "jitter": 0}
    with connect(port) as sock:
        assert round_trip(sock) >= 0.119
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="nope")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    assert proxy.destroy_toxic("latency_downstream") is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")

    with proxy.down():
        assert library.get_proxy("lib").enabled is False
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert library.get_proxy("lib").enabled is True
    with connect(port) as sock:
        round_trip(sock)

    proxy.add_toxic(type="timeout", name="t", stream="upstream", attributes={"timeout": 0})
    assert library.reset() is True
    assert proxy.toxics() == {}
    populated = library.populate(
        [{"name": "lib2", "upstream": echo_server.address, "listen": "127.0.0.1:0"}]
    )
    assert [p.name for p in populated] == ["lib2"]
    assert library.destroy(proxy) is True
    assert library.destroy("lib2") is False
    assert set(library.proxies()) == {"lib2"}


def test_typed_client_context_managers(
    proxy_server: ToxiproxyServer, echo_server: TcpServer
) -> None:
    client = proxy_server.client
    assert client.version() == '{"version": "2.12.0"}\n'
    proxy = proxy_server.create_proxy("typed", echo_server.address)
    try:
        assert proxy.listen_host == "127.0.0.1" and proxy.listen_port > 0
        with connect(proxy.listen_port) as sock:
            with proxy.toxic("latency", latency=150) as info:
                assert info.name == "latency_downstream"
                assert [t.name for t in proxy.toxics()] == ["latency_downstream"]
                assert round_trip(sock) >= 0.149
                updated = proxy.update_toxic("latency_downstream", attributes={"latency": 1})
                assert updated.attributes == {"latency": 1, "jitter": 0}
            assert proxy.toxics() == []
            assert round_trip(sock) < 0.5
            with proxy.down():
                assert recv_until_closed(sock)[0] == b""
                assert client.get_proxy("typed").enabled is False
        assert proxy.refresh().enabled is True
        with pytest.raises(RuntimeError), proxy.down():
            raise RuntimeError("the heal still runs")
        assert proxy.refresh().enabled is True
        with pytest.raises(ToxiproxyError, match="invalid toxic type"):
            proxy.add_toxic("nope")
        with pytest.raises(ToxiproxyError, match="proxy already exists"):
            client.create_proxy("typed", echo_server.address)
        with pytest.raises(ToxiproxyError, match="address already in use"):
            client.create_proxy("clash", echo_server.address, listen=proxy.listen)
    finally:
        proxy.delete()
    assert "typed" not in client.proxies()


def test_client_errors_say_what_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=2)
    with pytest.raises(ToxiproxyError, match="cannot reach Toxiproxy"):
        client.create_proxy("x", "127.0.0.1:1")
    with pytest.raises(ToxiproxyError, match="reading the version failed: cannot reach"):
        client.version()
    assert client.running() is False
    client.close()
    with pytest.raises(ToxiproxyError, match="http://host:port"):
        ToxiproxyClient("localhost:8474")


def test_launcher_uses_env_url_and_never_kills_it(proxy_server: ToxiproxyServer) -> None:
    external = ToxiproxyServer(env={"NOTEPIPE_TOXIPROXY_URL": proxy_server.url, "PATH": ""})
    external.start()
    assert external.kind == "external" and external.url == proxy_server.url
    external.create_proxy("ext", "127.0.0.1:1")
    external.stop()
    assert "ext" not in proxy_server.client.proxies()
    assert proxy_server.client.version()  # still running


def test_launcher_prefers_toxiproxy_server_on_path(tmp_path: os.PathLike[str]) -> None:
    fake = os.path.join(tmp_path, "toxiproxy-server")
    with open(fake, "w") as script:
        script.write(f'#!/bin/sh\nexec {sys.executable} -m harness.proxy "$@"\n')
    os.chmod(fake, 0o755)
    with ToxiproxyServer(env={**os.environ, "PATH": str(tmp_path)}) as server:
        assert server.kind == "toxiproxy-server"
        assert server.client.version()


def test_launcher_refuses_a_fallback_when_the_real_server_is_expected() -> None:
    env = {**os.environ, "PATH": "", EXPECT_ENV: "toxiproxy-server"}
    env.pop("NOTEPIPE_TOXIPROXY_URL", None)
    server = ToxiproxyServer(env=env)
    with pytest.raises(ServiceStartError, match="found is 'notepipe'"):
        server.start()
    assert server.pid is None  # the built-in it started was stopped again


def test_launcher_reports_start_failure_with_log(tmp_path: os.PathLike[str]) -> None:
    fake = os.path.join(tmp_path, "toxiproxy-server")
    with open(fake, "w") as script:
        script.write("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    os.chmod(fake, 0o755)
    server = ToxiproxyServer(env={"PATH": str(tmp_path)}, startup_timeout=10)
    with pytest.raises(ServiceStartError, match="boom: cannot start"):
        server.start()
    server.stop()


def test_launcher_stop_kills_the_process() -> None:
    server = ToxiproxyServer(builtin=True)
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_command_line_port_zero_prints_port_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.proxy", "-host", "127.0.0.1", "-port=0"],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        assert "API HTTP server starting" in line
        import json

        ready = json.loads(line)
        client = ToxiproxyClient(f"http://127.0.0.1:{ready['port']}")
        assert client.version()
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_config_file_populates_at_startup(
    tmp_path: os.PathLike[str], echo_server: TcpServer
) -> None:
    config = os.path.join(tmp_path, "proxies.json")
    with open(config, "w") as handle:
        handle.write(
            f'[{{"name": "fromcfg", "upstream": "{echo_server.address}", "listen": "127.0.0.1:0"}}]'
        )
    with ToxiproxyServer(builtin=True, extra_args=("-config", config)) as server:
        proxy = server.client.get_proxy("fromcfg")
        with connect(proxy.listen_port) as sock:
            round_trip(sock)
