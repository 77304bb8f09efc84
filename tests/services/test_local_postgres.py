"""LocalPostgres: a real postgres we start, fault and stop."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services import local_postgres, scram
from harness.services.base import Service
from harness.services.local_postgres import LocalPostgres
from harness.wait import wait_until
from tests.services.tracked import tracked


@pytest.fixture
def make_postgres() -> Iterator[type[LocalPostgres]]:
    """LocalPostgres instances made in a test, all stopped at its end."""
    yield from tracked(LocalPostgres)


def _query(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def test_start_stop(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    assert isinstance(service, Service)
    service.start()
    service.start()  # idempotent
    assert _query(service.url, "SELECT current_user, current_database()") == [
        ("notepipe", "notepipe")
    ]
    assert re.fullmatch(r"\d+\.\d+", service.version)
    assert (service.kind, service.backend) == ("postgres", "local")
    service.stop()
    service.stop()  # idempotent
    assert not service.running
    with pytest.raises(psycopg.OperationalError):
        _query(service.url, "SELECT 1")


def test_runs_unprivileged_with_private_data_dir(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    service.start()
    assert service.data_dir.stat().st_mode & 0o777 == 0o700
    proc = service._proc
    assert proc is not None
    uid = os.stat(f"/proc/{proc.pid}").st_uid
    assert uid != 0
    assert service.data_dir.stat().st_uid == uid
    settings = dict(
        _query(
            service.url,
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'max_connections', 'listen_addresses')",
        )
    )
    assert (service.workdir / f".s.PGSQL.{service.port}").is_socket()
    assert settings == {
        "fsync": "off",
        "max_connections": "200",
        "listen_addresses": "127.0.0.1",
    }


def test_kill_takes_the_whole_group_and_data_recovers(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    service.start()
    with psycopg.connect(service.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
        conn.execute("INSERT INTO notes VALUES (1)")
    proc = service._proc
    assert proc is not None
    backends = reaper.descendants(proc.pid)
    assert backends  # checkpointer, walwriter, ...: each in a process group of its own
    service.kill()
    assert proc.returncode == -9
    assert not reaper.live_group_members(proc.pid)
    assert not [pid for pid in backends if reaper.pid_alive(pid)]
    with pytest.raises(psycopg.OperationalError):
        _query(service.url, "SELECT 1")
    service.start()
    assert _query(service.url, "SELECT id FROM notes") == [(1,)]


def test_pause_and_resume(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    service.start()
    service.pause()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(service.url, connect_timeout=1).close()
    finally:
        service.resume()
    assert wait_until(
        lambda: _query(service.url, "SELECT 1"),
        10,
        describe="postgres to answer after resume",
        transient=(psycopg.OperationalError,),
    )
    service.stop()
    with pytest.raises(HarnessError, match="not running"):
        service.pause()


def test_stop_while_paused(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    service.start()
    service.pause()
    service.stop()
    assert not service.running


def test_restart_keeps_or_wipes_data(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    service.start()
    port = service.port
    with psycopg.connect(service.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id int)")
        conn.execute("INSERT INTO notes VALUES (1)")
    service.restart()
    assert service.port == port
    assert _query(service.url, "SELECT id FROM notes") == [(1,)]
    service.restart(keep_data=False)
    assert service.port == port
    assert _query(service.url, "SELECT to_regclass('notes') IS NULL") == [(True,)]


def test_password_is_required(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres(user="app", password="s3cret-pw", database="appdb")
    service.start()
    assert service.url == f"postgresql://app:s3cret-pw@127.0.0.1:{service.port}/appdb"
    assert _query(service.url, "SELECT current_user") == [("app",)]
    base = {"host": "127.0.0.1", "port": service.port, "dbname": "appdb", "connect_timeout": 3}
    for attempt in (
        {"user": "app", "password": ""},
        {"user": "app", "password": "wrong"},
        {"user": "postgres", "password": ""},
        {"user": "postgres", "password": "s3cret-pw"},
    ):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(**base, **attempt).close()  # type: ignore[arg-type]
    # a chosen password keeps the full PBKDF2 iteration count
    assert scram.verifier_iterations(service.scram_verifier()) == scram.DEFAULT_ITERATIONS
    log = service.logs(500)
    assert "s3cret-pw" not in log


def test_a_generated_password_gets_a_cheap_verifier_that_still_guards_the_login(
    make_postgres: type[LocalPostgres],
) -> None:
    service = make_postgres()
    service.start()
    verifier = service.scram_verifier()
    assert scram.verifier_iterations(verifier) == scram.GENERATED_PASSWORD_ITERATIONS
    assert _query(service.url, "SELECT current_user") == [("notepipe",)]
    wrong = service.url.replace(service.password, service.password[:-1] + "!")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=3).close()
    service.restart()  # the same verifier (salt) survives a restart: a pooler's copy holds
    assert service.scram_verifier() == verifier
    assert _query(service.url, "SELECT 1") == [(1,)]


def test_repr_hides_the_password(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    assert service.password not in repr(service)
    service.start()
    assert service.password not in repr(service)
    assert str(service.port) in repr(service)


def test_start_failure_carries_log_tail_and_hint(make_postgres: type[LocalPostgres]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = make_postgres(port=taken.getsockname()[1])
        with pytest.raises(ServiceStartError) as info:
            service.start()
    message = str(info.value)
    assert "could not bind" in message
    assert "Hint:" in message
    assert service.password not in message
    assert not service.running


def test_template_is_built_once_even_when_builders_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes (like xdist workers) build the same template at once; both succeed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = (
        "from harness.services import local_postgres as lp\n"
        "print(lp._template(lp._bindir(), 'racer', 'racedb'))\n"
    )
    builders = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        outputs = [b.communicate(timeout=120)[0].strip() for b in builders]
    finally:
        for builder in builders:
            builder.kill()
    assert [b.returncode for b in builders] == [0, 0]
    assert outputs[0] == outputs[1]
    template = Path(outputs[0])
    assert template.parent == tmp_path / "notepipe"
    assert (template / "PG_VERSION").is_file()
    assert [p.name for p in template.parent.iterdir()] == [template.name]  # no leftovers
    bindir = local_postgres._bindir()
    assert local_postgres._template(bindir, "racer", "racedb") == template  # cached


def test_logs_tail(make_postgres: type[LocalPostgres]) -> None:
    service = make_postgres()
    assert "no log" in service.logs()
    service.start()
    assert "ready to accept connections" in service.logs()
    assert len(service.logs(tail=2).splitlines()) == 2
