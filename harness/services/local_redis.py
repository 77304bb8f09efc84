"""A real ``redis-server`` on a free loopback port, with a password (the ``local`` backend)."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services.base import BackendName, ServiceKind
from harness.services.ports import LOOPBACK, LoopbackEndpoint, free_port, start_on_free_port
from harness.wait import WaitTimeout, wait_until

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
HINT = "Hint: install redis-server (apt-get install redis-server) or put it on PATH."
# Errors that mean "not ready yet" while the server boots or loads its AOF.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


class LocalRedis(LoopbackEndpoint):
    """``redis-server`` bound to 127.0.0.1 with ``requirepass``, data in a temp dir."""

    kind: ServiceKind = "redis"
    backend: BackendName = "local"

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
        self._auto_port = port is None
        self._port = port if port is not None else free_port()
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="notepipe-redis-"))
            weakref.finalize(self, shutil.rmtree, workdir, ignore_errors=True)
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._started_once = False
        self._version: str | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"LocalRedis(url={self._redacted_url()!r}, appendonly={self.appendonly}, {state})"

    @property
    def url(self) -> str:
        return f"redis://default:{quote(self._password, safe='')}@{LOOPBACK}:{self._port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

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
        binary = _binary()
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(self._config(data_dir))  # the password stays out of argv
        self._proc = reaper.spawn(
            [binary, str(conf)], env=None, cwd=self.workdir, log_path=self.log_path
        )
        self._paused = False
        try:
            wait_until(
                self._ping,
                START_TIMEOUT,
                describe=f"redis-server on {LOOPBACK}:{self._port} to answer PING",
                transient=TRANSIENT_ERRORS,
            )
        except (WaitTimeout, ServiceStartError) as exc:
            self.kill()
            raise ServiceStartError(
                f"redis-server did not start on {LOOPBACK}:{self._port}: {exc}\n"
                f"--- last lines of {self.log_path} ---\n{self.logs(30)}\n{HINT}"
            ) from exc

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
        if self._proc is None or self._proc.poll() is not None:
            code = None if self._proc is None else self._proc.returncode
            raise ServiceStartError(f"redis-server exited with code {code}")
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

    def stop(self) -> None:
        """SIGTERM (redis shuts down cleanly, fsyncing the AOF), wait, SIGKILL if it hangs."""
        if self._proc is None:
            return
        reaper.terminate(self._proc, sig=signal.SIGTERM, grace=STOP_TIMEOUT)
        self._proc = None
        self._paused = False

    def kill(self) -> None:
        if self._proc is None:
            return
        reaper.terminate(self._proc, sig=signal.SIGKILL, grace=STOP_TIMEOUT)
        self._proc = None
        self._paused = False

    def pause(self) -> None:
        reaper.signal_tree(self._require_proc(), signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        reaper.signal_tree(self._require_proc(), signal.SIGCONT)
        self._paused = False

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop and start on the same port; data survives only with ``appendonly``."""
        self.stop()
        if not keep_data:
            shutil.rmtree(self.workdir / "data", ignore_errors=True)
        self.start()

    def logs(self, tail: int = 50) -> str:
        return _tail(self.log_path, tail)

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise HarnessError(f"{self!r} is not running")
        return self._proc

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


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
