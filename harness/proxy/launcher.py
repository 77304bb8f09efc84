"""Start (or find) a Toxiproxy server for the harness.

Chosen in this order:

1. ``NOTEPIPE_TOXIPROXY_URL`` points at a running server (never started or killed
   here; proxies created through this object are deleted on ``stop``);
2. a real ``toxiproxy-server`` on ``PATH``;
3. this project's implementation, ``python -m harness.proxy``.

Started servers run in their own process group on a free loopback port, are
registered with :mod:`harness.reaper` (killed at interpreter exit at the latest),
and are ready once ``GET /version`` answers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import httpx

from harness import reaper
from harness.errors import ServiceStartError
from harness.proxy.client import ProxyHandle, ToxiproxyClient
from harness.proxy.errors import ToxiproxyError
from harness.services.ports import LOOPBACK, free_port
from harness.wait import WaitTimeout, wait_until

URL_ENV = "NOTEPIPE_TOXIPROXY_URL"
#: Set to a kind (``toxiproxy-server``, ``external``, ``notepipe``) to fail instead of
#: silently falling back, e.g. ``make scenarios-real-toxiproxy`` requires the real one.
EXPECT_ENV = "NOTEPIPE_EXPECT_TOXIPROXY"
Kind = Literal["external", "toxiproxy-server", "notepipe"]


def _log_tail(path: Path, lines: int = 30) -> str:
    return reaper.log_tail(path, lines, missing="(no log)")


class ToxiproxyServer:
    """A Toxiproxy server: ``start()``, ``stop()``, ``url``, ``client``, ``create_proxy()``."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        binary: str | None = None,
        startup_timeout: float = 20.0,
        extra_args: tuple[str, ...] = (),
        builtin: bool = False,
    ) -> None:
        """``builtin=True`` always runs this project's server (ignores PATH and the env URL)."""
        self._env = dict(os.environ if env is None else env)
        self._binary = binary
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.builtin = builtin
        self.kind: Kind | None = None
        self._url: str | None = None
        self._client: ToxiproxyClient | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._created: list[str] = []
        self._atexit = False

    def __enter__(self) -> ToxiproxyServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ToxiproxyServer {self.kind or 'not started'} {self._url or ''}>"

    @property
    def url(self) -> str:
        if self._url is None:
            raise ToxiproxyError("the Toxiproxy server is not started; call start() first")
        return self._url

    @property
    def client(self) -> ToxiproxyClient:
        if self._client is None:
            self._client = ToxiproxyClient(self.url)
        return self._client

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self, port: int) -> list[str]:
        binary = self._binary or (
            None if self.builtin else shutil.which("toxiproxy-server", path=self._env.get("PATH"))
        )
        if binary:
            self.kind = "toxiproxy-server"
            return [binary, "-host", LOOPBACK, "-port", str(port), *self.extra_args]
        self.kind = "notepipe"
        return [
            sys.executable,
            "-m",
            "harness.proxy",
            "-host",
            LOOPBACK,
            "-port",
            str(port),
            *self.extra_args,
        ]

    def start(self) -> None:
        if self._url is not None:
            return
        self._start()
        expected = None if self.builtin else self._env.get(EXPECT_ENV)
        if expected and self.kind != expected:
            kind = self.kind
            self.stop()
            raise ServiceStartError(
                f"{EXPECT_ENV}={expected} but the Toxiproxy server found is {kind!r}. "
                "Hint: put the real toxiproxy-server on PATH (make peers builds it into "
                f".peers/bin) or point {URL_ENV} at a running one."
            )

    def _start(self) -> None:
        external = None if self.builtin else self._env.get(URL_ENV)
        if external:
            self.kind = "external"
            self._url = external.rstrip("/")
            self._wait_ready(None)
            return
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        last: Exception | None = None
        for _attempt in range(3):  # a free port can be taken before the server binds it
            try:
                self._spawn()
                return
            except ServiceStartError as exc:
                last = exc
                if self._proc is None or self._proc.poll() is None:
                    raise
                self._discard_process()
        assert last is not None
        raise last

    def _spawn(self) -> None:
        port = free_port()
        fd, name = tempfile.mkstemp(prefix="toxiproxy-", suffix=".log")
        os.close(fd)
        self._log = Path(name)
        env = {**self._env, "PYTHONUNBUFFERED": "1"}
        self._proc = reaper.spawn(self.command(port), env=env, cwd=None, log_path=self._log)
        self._url = f"http://{LOOPBACK}:{port}"
        try:
            self._wait_ready(self._proc)
        except BaseException:
            self._url = None
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes] | None) -> None:
        url = self._url
        assert url is not None

        def ready() -> bool:
            if proc is not None and proc.poll() is not None:
                raise ServiceStartError(
                    f"Toxiproxy server ({self.kind}) exited with code {proc.returncode} during "
                    f"startup.\n--- log tail ---\n{_log_tail(self._log) if self._log else ''}\n"
                    "Hint: check the port is free and the command runs by hand."
                )
            response = httpx.get(f"{url}/version", timeout=2.0)
            return response.status_code == 200

        try:
            wait_until(
                ready,
                self.startup_timeout,
                describe=f"Toxiproxy ({self.kind}) at {url} to answer GET /version",
                transient=(httpx.HTTPError,),
            )
        except WaitTimeout as exc:
            tail = _log_tail(self._log) if self._log and proc is not None else "(not started here)"
            hint = (
                f"is {URL_ENV} right?" if proc is None else "the server may be overloaded or hung"
            )
            raise ServiceStartError(f"{exc}\n--- log tail ---\n{tail}\nHint: {hint}") from exc

    def _discard_process(self) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                reaper.terminate(proc, grace=5.0)
        finally:
            if self._log is not None:
                with contextlib.suppress(OSError):
                    self._log.unlink()
                self._log = None

    def logs(self, tail: int = 50) -> str:
        return _log_tail(self._log, tail) if self._log else ""

    def create_proxy(
        self, name: str, upstream: str, *, listen: str = f"{LOOPBACK}:0", enabled: bool = True
    ) -> ProxyHandle:
        """A new proxy ``name`` → ``upstream``; its ``listen_host``/``listen_port`` are bound."""
        handle = self.client.create_proxy(name, upstream, listen=listen, enabled=enabled)
        self._created.append(name)
        return handle

    def stop(self) -> None:
        """Stop what was started here (SIGTERM, then SIGKILL); on an external server, delete
        the proxies created through this object. Idempotent."""
        try:
            if self.kind == "external" and self._client is not None:
                for name in self._created:
                    with contextlib.suppress(ToxiproxyError):
                        self._client._request("DELETE", f"/proxies/{name}", f"deleting {name!r}")
        finally:
            self._created.clear()
            try:
                if self._client is not None:
                    self._client.close()
                    self._client = None
            finally:
                self._url = None
                self._discard_process()
