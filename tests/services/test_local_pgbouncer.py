"""LocalPgBouncer: a real PgBouncer in front of a LocalPostgres (session pooling, SCRAM)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from harness.services.base import Service
from harness.services.local_pgbouncer import LocalPgBouncer
from harness.services.local_postgres import LocalPostgres


@pytest.fixture
def bouncer() -> Iterator[LocalPgBouncer]:
    postgres = LocalPostgres()
    postgres.start()
    pooler = LocalPgBouncer(postgres)
    try:
        pooler.start()
        yield pooler
    finally:
        pooler.stop()
        postgres.stop()


def test_sessions_reuse_one_server_connection(bouncer: LocalPgBouncer) -> None:
    assert isinstance(bouncer, Service)
    pids = set()
    for _ in range(3):
        with psycopg.connect(bouncer.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_backend_pid(), current_user").fetchone()
            assert row is not None and row[1] == bouncer.postgres.user
            pids.add(row[0])
    assert len(pids) == 1, "each client connection forked a backend: no pooling"
    assert bouncer.port != bouncer.postgres.port
    assert bouncer.password not in repr(bouncer)


def test_password_is_required_and_never_stored(bouncer: LocalPgBouncer) -> None:
    wrong = bouncer.url.replace(bouncer.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    stored = (bouncer.workdir / "userlist.txt").read_text()
    assert stored.count("SCRAM-SHA-256$") == 1
    assert bouncer.password not in stored + (bouncer.workdir / "pgbouncer.ini").read_text()


def test_survives_a_postgres_restart(bouncer: LocalPgBouncer) -> None:
    with psycopg.connect(bouncer.url, autocommit=True) as conn:
        conn.execute("SELECT 1")
    bouncer.postgres.restart()
    with psycopg.connect(bouncer.url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
