"""A real ``postgres`` on a free loopback port, with a password (the ``local`` backend).

``initdb`` runs once per PostgreSQL version, role and database into a cached
template (``$XDG_CACHE_HOME/notepipe`` or ``~/.cache/notepipe``); each instance
copies it. Postgres refuses to run as root, so under root the server runs as
the ``postgres`` system user (or ``nobody``). The role's password is per
instance: it is set at start over the instance's own unix socket (trusted,
in a 0700 directory), as a SCRAM verifier computed client-side (a generated
password's with fewer PBKDF2 iterations: :mod:`harness.services.scram` says why).
TCP connections, on 127.0.0.1 only, need that password (scram-sha-256).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services import scram
from harness.services.base import BackendName, ServiceKind
from harness.services.local_process import LocalProcessService
from harness.services.ports import LOOPBACK
from harness.wait import WaitTimeout, wait_until

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SUPERUSER = "postgres"
TEMPLATE_LAYOUT = "v2"  # bump when the template's contents change
HINT = (
    "Hint: install PostgreSQL server binaries (apt-get install postgresql) so that "
    "`pg_config --bindir` or /usr/lib/postgresql/<version>/bin holds postgres and initdb."
)
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
PG_HBA = f"local all all trust\nhost all all {LOOPBACK}/32 scram-sha-256\n"
FAST_SETTINGS = {
    "listen_addresses": LOOPBACK,
    "fsync": "off",
    # fsync=off is safe here: a killed server leaves its writes in the OS page cache.
    # synchronous_commit stays on: off would let SIGKILL lose acknowledged commits
    # (WAL still in shared memory), which a kill fault would report as lost notes.
    # With fsync off, a synchronous commit is only a write(), so it costs little.
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "200",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "password_encryption": "scram-sha-256",
    "unix_socket_permissions": "0700",
}


def answers_sql(url: str) -> bool:
    """A readiness check: ``SELECT 1`` over a new connection to ``url`` (raises if not)."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")
    return True


class LocalPostgres(LocalProcessService):
    """``postgres`` bound to 127.0.0.1, scram-sha-256 for TCP, data copied from a template."""

    kind: ServiceKind = "postgres"
    backend: BackendName = "local"
    program = "postgres"
    hint = HINT
    port_taken_marker = "already in use"
    # Fast shutdown: SIGINT to the postmaster only (it ends its backends itself).
    stop_signal = signal.SIGINT
    stop_leader_only = True
    start_timeout = START_TIMEOUT
    stop_timeout = STOP_TIMEOUT

    def __init__(
        self,
        user: str = "notepipe",
        password: str | None = None,
        database: str = "notepipe",
        *,
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.user = user
        # A generated password is random enough for a cheap verifier (see harness.services.scram).
        self._generated_password = password is None
        self._password = password if password is not None else scram.generated_password()
        self.database = database
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="notepipe-pg-", dir=scratch_dir()))
            weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self._init_process(port, workdir / "postgres.log")
        self.run_user = _run_user()
        self._verifier: str | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalPostgres(url={self._redacted_url()!r}, {state})"

    @property
    def url(self) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self._password, safe='')}"
            f"@{LOOPBACK}:{self._port}/{quote(self.database, safe='')}"
        )

    @property
    def version(self) -> str:
        return _version(_bindir())

    def _start_once(self) -> None:
        bindir = _bindir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        _own(self.workdir, self.run_user)
        if not self.data_dir.exists():
            _copy_data_dir(_template(bindir, self.user, self.database), self.data_dir)
            _own_tree(self.data_dir, self.run_user)
        settings = {**FAST_SETTINGS, "unix_socket_directories": str(self.workdir)}
        cmd = [str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self._port)]
        for name, value in settings.items():
            cmd += ["-c", f"{name}={value}"]
        self._spawn(cmd, env=_env(), cwd=self.workdir, user=self.run_user)
        self._await_ready(
            [
                (
                    self._set_password,
                    f"postgres in {self.workdir} to accept a unix-socket connection",
                ),
                (self._connect, f"postgres on {LOOPBACK}:{self._port} to accept {self.user}"),
            ],
            TRANSIENT_ERRORS,
        )

    def _set_password(self) -> bool:
        self._check_alive()
        with _socket_connect(self.workdir, self._port) as conn:
            if self._verifier is None:  # one salt per instance: a pooler's copy stays valid
                self._verifier = (
                    scram.scram_sha_256_verifier(
                        self._password, iterations=scram.GENERATED_PASSWORD_ITERATIONS
                    )
                    if self._generated_password
                    else conn.pgconn.encrypt_password(
                        self._password.encode(), self.user.encode(), b"scram-sha-256"
                    ).decode()
                )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self._verifier)
                )
            )
        return True

    def scram_verifier(self) -> str:
        """The role's SCRAM verifier (salt, iterations, keys; not the password), read over
        the instance's own unix socket: a pooler holding it can check a client's proof and
        log in to this server without ever storing the password."""
        with _socket_connect(self.workdir, self._port) as conn:
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (self.user,)
            ).fetchone()
        if row is None or not str(row[0]).startswith("SCRAM-SHA-256$"):
            raise HarnessError(f"role {self.user!r} has no SCRAM verifier in {self!r}")
        return str(row[0])

    def _connect(self) -> bool:
        self._check_alive()
        return answers_sql(self.url)

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop and start on the same port; ``keep_data=False`` starts from the template."""
        self.stop()
        if not keep_data:
            shutil.rmtree(self.data_dir)
        self.start()

    def _redacted_url(self) -> str:
        return f"postgresql://{self.user}:***@{LOOPBACK}:{self._port}/{self.database}"


def _socket_connect(sockdir: Path, port: int) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=str(sockdir),
        port=port,
        user=SUPERUSER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=2,
    )


def _bindir() -> Path:
    """The newest PostgreSQL server bindir: pg_config, /usr/lib/postgresql/*/bin, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(p) for p in debian),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
        reverse=True,
    )
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    tried = ", ".join(str(c) for c in candidates) or "nothing found"
    raise ServiceStartError(f"no PostgreSQL server binaries (tried: {tried}).\n{HINT}")


def _version(bindir: Path) -> str:
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    # "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    words = out.split()
    return words[2] if len(words) > 2 else out.strip()


def _run_user() -> str | None:
    """The account postgres runs as: itself unless root, then ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServiceStartError("running as root and neither a `postgres` nor `nobody` user exists")


def _own(path: Path, user: str | None, mode: int = 0o700) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(mode)


def _own_tree(root: Path, user: str | None) -> None:
    root.chmod(0o700)
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _copy_data_dir(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)  # copy2: permissions and times preserved
    dst.chmod(0o700)


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}


def scratch_dir() -> str | None:
    """The shared-memory tmpfs when roomy (copying a data dir there is ~10x faster), else None.

    Docker's default shm size is 64 MB, too small for a few instances; then the
    system temp dir is used. Callers create private dirs in it with mkdtemp.
    """
    shm = "/dev/shm"  # noqa: S108 - only ever used as mkdtemp's parent
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= 1 << 30
    return shm if roomy and os.access(shm, os.W_OK | os.X_OK) else None


def template_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "notepipe"


def _template(bindir: Path, user: str, database: str) -> Path:
    """The cached, initdb'd data dir holding ``user`` and ``database``; built once, atomically."""
    version = _version(bindir)
    key = hashlib.sha256(f"{TEMPLATE_LAYOUT}\0{user}\0{database}".encode()).hexdigest()[:12]
    final = template_cache_dir() / f"pg-template-{version}-{key}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    run_user = _run_user()
    build = Path(tempfile.mkdtemp(prefix="notepipe-pg-build-"))
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        _own(build, run_user)
        _build_template(bindir, build, run_user, user, database)
        _copy_data_dir(build / "data", staging / "data")
        try:
            os.rename(staging / "data", final)  # atomic; loses cleanly to a concurrent builder
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _build_template(
    bindir: Path, build: Path, run_user: str | None, user: str, database: str
) -> None:
    data = build / "data"
    log = build / "build.log"
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        SUPERUSER,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--wal-segsize=1",  # 1 MB WAL segments: a 16 MB smaller template to copy
        "--no-instructions",
    ]
    proc = reaper.spawn(initdb, env=_env(), cwd=build, log_path=log, user=run_user)
    try:
        code = proc.wait(timeout=120)
    finally:
        reaper.terminate(proc, grace=1.0)
    if code != 0:
        raise ServiceStartError(
            f"initdb failed with code {code}:\n{log.read_text(errors='replace')}\n{HINT}"
        )
    (data / "pg_hba.conf").write_text(PG_HBA)
    port = 5432  # unix socket only (listen_addresses=''), in our private build dir
    postgres = [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(build)]
    server = reaper.spawn(
        [*postgres, "-c", "listen_addresses=", "-c", "fsync=off"],
        env=_env(),
        cwd=build,
        log_path=log,
        user=run_user,
    )
    try:

        def setup() -> bool:
            if server.poll() is not None:
                raise ServiceStartError(f"postgres exited with code {server.returncode}")
            with _socket_connect(build, port) as conn:
                if user != SUPERUSER:
                    conn.execute(
                        sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(user))
                    )
                if database not in ("postgres", "template0", "template1"):
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(database), sql.Identifier(user)
                        )
                    )
            return True

        try:
            wait_until(
                setup, START_TIMEOUT, describe="the template server", transient=TRANSIENT_ERRORS
            )
        except (WaitTimeout, ServiceStartError, psycopg.Error) as exc:
            raise ServiceStartError(
                f"could not prepare the postgres template in {build}: {exc}\n"
                f"{log.read_text(errors='replace')[-4000:]}\n{HINT}"
            ) from exc
    finally:
        reaper.terminate(server, sig=signal.SIGINT, grace=STOP_TIMEOUT, leader_only=True)
