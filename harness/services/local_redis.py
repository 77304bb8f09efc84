"""A real ``redis-server`` on a free loopback port, with a password (the ``local`` backend)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.errors import ServiceStartError
from harness.services.base import BackendName, ServiceKind
from harness.services.local_process import LocalProcessService
from harness.services.ports import LOOPBACK

HINT = "Hint: install redis-server (apt-get install redis-server) or put it on PATH."
# Errors that mean "not ready yet" while the server boots or loads its AOF.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


class LocalRedis(LocalProcessService):
    """``redis-server`` bound to 127.0.0.1 with ``requirepass``, data in a temp dir."""

    kind: ServiceKind = "redis"
    backend: BackendName = "local"
    program = "redis-server"
    hint = HINT

    def __init__(
        self,
        password: str | None = None,
        *,
        appendonly: bool = False,
        port: int | None = None,
        workdir: Path | None = None,
    ) -> None:
        self._password = password if password is not None else secrets.token_urlsafe(24)
        self.appendonly = appendonly
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="notepipe-redis-"))
            weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        self._init_process(port, workdir / "redis.log")
        self._version: str | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalRedis(url={self._redacted_url()!r}, appendonly={self.appendonly}, {state})"

    @property
    def url(self) -> str:
        return f"redis://default:{quote(self._password, safe='')}@{LOOPBACK}:{self._port}/0"

    @property
    def version(self) -> str:
        if self._version is None:
            binary = _binary()
            out = subprocess.run(
                [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
            ).stdout
            # "Redis server v=7.0.15 sha=... malloc=... bits=64 build=..."
            fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
            self._version = fields.get("v", out.strip())
        return self._version

    def _start_once(self) -> None:
        binary = _binary()
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(self._config(data_dir))  # the password stays out of argv
        self._spawn([binary, str(conf)], cwd=self.workdir)
        self._await_ready(
            [(self._ping, f"redis-server on {LOOPBACK}:{self._port} to answer PING")],
            TRANSIENT_ERRORS,
        )

    def _config(self, data_dir: Path) -> str:
        lines = [
            f"bind {LOOPBACK}",
            f"port {self._port}",
            "protected-mode yes",
            f"requirepass {_quoted(self._password)}",
            'save ""',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            f"dir {_quoted(str(data_dir))}",
            'logfile ""',  # stdout, which spawn() appends to redis.log
            "daemonize no",
            "loglevel notice",
        ]
        if self.appendonly:
            lines.append("appendfsync always")
        return "\n".join(lines) + "\n"

    def _ping(self) -> bool:
        self._check_alive()
        client = self.client(socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.exceptions.AuthenticationError as exc:
            raise ServiceStartError(f"redis-server rejected our password: {exc}") from exc
        finally:
            client.close()

    def client(self, *, socket_timeout: float = 5.0, retries: int = 0) -> redis.Redis[bytes]:
        """A client for DB 0; by default without redis-py's retries, so faults show at once."""
        return redis.Redis(
            host=LOOPBACK,
            port=self._port,
            password=self._password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), retries),
        )

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop and start on the same port; data survives only with ``appendonly``."""
        self.stop()
        if not keep_data:
            shutil.rmtree(self.workdir / "data", ignore_errors=True)
        self.start()

    def _redacted_url(self) -> str:
        return f"redis://default:***@{LOOPBACK}:{self._port}/0"


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceStartError(f"redis-server not found on PATH.\n{HINT}")
    return binary


def _quoted(value: str) -> str:
    """A redis.conf double-quoted string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
