"""The session service fixtures: our own servers, clean state per test, loopback only."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
import redis

from harness.fixtures.services import FreshDatabase
from harness.services.base import Service
from harness.services.databases import drop_database


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of TCP sockets in LISTEN state on ``port`` (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


@pytest.mark.parametrize("name", ["redis_service", "postgres_service"])
def test_services_listen_on_loopback_only(name: str, request: pytest.FixtureRequest) -> None:
    service: Service = request.getfixturevalue(name)
    assert service.host == "127.0.0.1"
    assert _listening_addresses(service.port) == {"0100007F"}  # 127.0.0.1, nothing else
    outside = socket.gethostbyname(socket.gethostname())
    if not outside.startswith("127."):
        with pytest.raises(OSError), socket.create_connection((outside, service.port), timeout=2):
            pass


def test_redis_url_starts_empty(redis_url: str, redis_service: Service) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("left-behind", "by this test")


def test_redis_url_flushes_between_tests(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.get("left-behind") is None
    assert client.dbsize() == 0


def test_fresh_database_is_new_and_empty(
    fresh_database: FreshDatabase, postgres_service: Service
) -> None:
    first = fresh_database()
    second = fresh_database()
    assert first != second
    for url in (first, second):
        with psycopg.connect(url) as conn:
            (name,) = conn.execute("SELECT current_database()").fetchone() or ("",)
            assert url.endswith(f"/{name}")
            assert conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone() == (0,)
            conn.execute("CREATE TABLE notes (id int)")


def test_drop_database_ends_the_sessions_still_in_it(
    fresh_database: FreshDatabase, postgres_service: Service
) -> None:
    url = fresh_database()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as lingering:
        drop_database(postgres_service.url, name)
        with pytest.raises(psycopg.OperationalError):
            lingering.execute("SELECT 1")
    with psycopg.connect(postgres_service.url) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
        )
    drop_database(postgres_service.url, name)  # already gone: IF EXISTS


def test_fresh_databases_are_dropped_at_teardown(tmp_path: Path) -> None:
    """In a pytest run of its own: a database made by one test is gone in the next."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.fixtures.services"]\n')
    (tmp_path / "test_drop.py").write_text(
        textwrap.dedent(
            """
            import psycopg

            CREATED = []

            def test_make(fresh_database):
                CREATED.append(fresh_database().rsplit("/", 1)[1])

            def test_gone(postgres_service):
                with psycopg.connect(postgres_service.url) as conn:
                    rows = conn.execute(
                        "SELECT datname FROM pg_database WHERE datname = %s", (CREATED[0],)
                    ).fetchall()
                assert rows == []
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
