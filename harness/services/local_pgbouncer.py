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
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

import psycopg

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services.base import BackendName, ServiceKind
from harness.services.local_postgres import LocalPostgres, _own
from harness.services.ports import LOOPBACK, LoopbackEndpoint, free_port, start_on_free_port
from harness.wait import WaitTimeout, wait_until

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
HINT = "Hint: install PgBouncer (apt-get install pgbouncer) so that `pgbouncer` is on PATH."
#: Server connections per (database, user): more than a stack's sessions ever open at once.
POOL_SIZE = 60


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


class LocalPgBouncer(LoopbackEndpoint):
    """``pgbouncer`` (session pooling, scram-sha-256) for one database of ``postgres``."""

    kind: ServiceKind = "postgres"
    backend: BackendName = "local"

    def __init__(self, postgres: LocalPostgres, *, port: int | None = None) -> None:
        self.postgres = postgres
        self._password = postgres.password
        self._auto_port = port is None
        self._port = port if port is not None else free_port()
        workdir = Path(tempfile.mkdtemp(prefix="notepipe-pgbouncer-"))
        weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        self.log_path = workdir / "pgbouncer.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

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

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

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

    def start(self) -> None:
        if self.running:
            return
        start_on_free_port(
            self,
            self._start_once,
            retry=self._auto_port and not self._started_once,
            port_taken_marker="Address already in use",
        )
        self._started_once = True

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
        self._proc = reaper.spawn(
            [binary, str(self.workdir / "pgbouncer.ini")],
            env=None,
            cwd=self.workdir,
            log_path=self.log_path,
            user=run_user,
        )
        try:
            wait_until(
                self._connect,
                START_TIMEOUT,
                describe=f"pgbouncer on {LOOPBACK}:{self._port} to accept {self.postgres.user}",
                transient=(psycopg.OperationalError,),
            )
        except (WaitTimeout, ServiceStartError) as exc:
            self.kill()
            raise ServiceStartError(
                f"pgbouncer did not start on {LOOPBACK}:{self._port}: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{self.logs(30)}\n{HINT}"
            ) from exc

    def _connect(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise ServiceStartError(f"pgbouncer exited with code {code}")
        with psycopg.connect(self.url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        if self._proc is None:
            return
        # SIGTERM: immediate shutdown (SIGINT would wait for every client to leave)
        reaper.terminate(self._proc, sig=signal.SIGTERM, grace=STOP_TIMEOUT)
        self._proc = None

    def kill(self) -> None:
        if self._proc is None:
            return
        reaper.terminate(self._proc, sig=signal.SIGKILL, grace=STOP_TIMEOUT)
        self._proc = None

    def pause(self) -> None:
        reaper.signal_tree(self._require_proc(), signal.SIGSTOP)

    def resume(self) -> None:
        reaper.signal_tree(self._require_proc(), signal.SIGCONT)

    def restart(self, *, keep_data: bool = True) -> None:
        self.stop()
        self.start()

    def logs(self, tail: int = 50) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-tail:])

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise HarnessError(f"{self!r} is not running")
        return self._proc
