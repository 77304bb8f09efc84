"""A real PgBouncer in front of a :class:`LocalPostgres`, on a free loopback port.

Pipeline processes that connect through it skip the costly part of a PostgreSQL
connection: no backend is forked per connection (server connections are pooled, in
*session* mode, so every session behaves exactly as on a direct connection) and the
server-side SCRAM work is replaced by checking the client's proof against the role's
stored verifier. Authentication stays scram-sha-256 with the same password; the
pooler's ``auth_file`` holds the verifier, never the password, and PgBouncer logs in
to PostgreSQL with the client's SCRAM keys (pass-through). Debian package:
``apt-get install pgbouncer``. PgBouncer refuses to run as root, so under root it runs
as the same account as the server.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

import psycopg

from harness.errors import ServiceStartError
from harness.services.base import BackendName, ServiceKind
from harness.services.local_postgres import LocalPostgres, _own, answers_sql
from harness.services.local_process import LocalProcessService
from harness.services.ports import LOOPBACK

HINT = "Hint: install PgBouncer (apt-get install pgbouncer) so that `pgbouncer` is on PATH."
#: Server connections per (database, user): more than a stack's sessions ever open at once.
POOL_SIZE = 60


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


class LocalPgBouncer(LocalProcessService):
    """``pgbouncer`` (session pooling, scram-sha-256) for one database of ``postgres``."""

    kind: ServiceKind = "postgres"
    backend: BackendName = "local"
    program = "pgbouncer"
    hint = HINT
    start_timeout = 15.0
    # SIGTERM (the default) is PgBouncer's immediate shutdown; SIGINT would wait for every
    # client to leave.

    def __init__(self, postgres: LocalPostgres, *, port: int | None = None) -> None:
        self.postgres = postgres
        self._password = postgres.password
        workdir = Path(tempfile.mkdtemp(prefix="notepipe-pgbouncer-"))
        weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        self._init_process(port, workdir / "pgbouncer.log")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"LocalPgBouncer(url='postgresql://{self.postgres.user}:***@{LOOPBACK}:{self._port}"
            f"/{self.postgres.database}', {state})"
        )

    @property
    def url(self) -> str:
        pg = self.postgres
        return (
            f"postgresql://{quote(pg.user, safe='')}:{quote(self._password, safe='')}"
            f"@{LOOPBACK}:{self._port}/{quote(pg.database, safe='')}"
        )

    @property
    def version(self) -> str:
        binary = pgbouncer_binary() or "pgbouncer"
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        first = out.stdout.splitlines()[0] if out.stdout else ""
        return first.split()[-1] if first else "?"  # "PgBouncer 1.18.0"

    def _config(self) -> str:
        pg = self.postgres
        return "\n".join(
            [
                "[databases]",
                f"{pg.database} = host={LOOPBACK} port={pg.port} dbname={pg.database}",
                "[pgbouncer]",
                f"listen_addr = {LOOPBACK}",
                f"listen_port = {self._port}",
                "unix_socket_dir =",
                "auth_type = scram-sha-256",
                f"auth_file = {self.workdir / 'userlist.txt'}",
                "pool_mode = session",
                "server_reset_query = DISCARD ALL",
                "max_client_conn = 1000",
                f"default_pool_size = {POOL_SIZE}",
                "ignore_startup_parameters = extra_float_digits",
                # a client waits at most this long for a server connection (then errors)
                "query_wait_timeout = 30",
                "server_connect_timeout = 5",
                "server_login_retry = 1",
                "",
            ]
        )

    def _start_once(self) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise ServiceStartError(f"pgbouncer is not installed. {HINT}")
        run_user = self.postgres.run_user
        verifier = self.postgres.scram_verifier()
        self.workdir.mkdir(parents=True, exist_ok=True)
        _own(self.workdir, run_user)
        for name, text in (
            ("userlist.txt", f'"{self.postgres.user}" "{verifier}"\n'),
            ("pgbouncer.ini", self._config()),
        ):
            path = self.workdir / name
            path.write_text(text)
            _own(path, run_user, 0o600)
        self._spawn([binary, str(self.workdir / "pgbouncer.ini")], cwd=self.workdir, user=run_user)
        self._await_ready(
            [
                (
                    self._connect,
                    f"pgbouncer on {LOOPBACK}:{self._port} to accept {self.postgres.user}",
                )
            ],
            (psycopg.OperationalError,),
        )

    def _connect(self) -> bool:
        self._check_alive()
        return answers_sql(self.url)

    def restart(self, *, keep_data: bool = True) -> None:
        self.stop()
        self.start()
