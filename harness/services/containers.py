"""Redis and PostgreSQL in Docker containers via testcontainers (the ``testcontainers`` backend).

Each service is one container from an exact image tag (nothing is pulled when
the tag is present), its port published on 127.0.0.1 only, on a port chosen
once so restarts keep it. Faults act on the container: ``docker kill``,
``pause``/``unpause``, ``stop`` + ``start`` (``keep_data=True`` keeps the
container's filesystem) or a new container (``keep_data=False``).

Containers are removed by :meth:`stop` and, for any still registered, at
interpreter exit. Ryuk (testcontainers' reaper) is not needed for that and is
usually disabled (``TESTCONTAINERS_RYUK_DISABLED=true``) where its image
cannot be pulled; ``scripts/local-docker.sh down`` removes any leftovers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import threading
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from testcontainers.core.container import DockerContainer

from harness.errors import HarnessError, ServiceStartError
from harness.services.base import BackendName, ServiceKind
from harness.services.ports import LOOPBACK, LoopbackEndpoint, free_port
from harness.wait import WaitTimeout, wait_until

DEFAULT_REDIS_IMAGE = "redis:7"
DEFAULT_POSTGRES_IMAGE = "postgres:16"
REDIS_IMAGE_ENV = "NOTEPIPE_REDIS_IMAGE"
POSTGRES_IMAGE_ENV = "NOTEPIPE_POSTGRES_IMAGE"
STOP_TIMEOUT = 10
LOG_TAIL = 30
HINT = (
    "Hint: start a Docker engine with local images: "
    'sudo scripts/local-docker.sh up && eval "$(scripts/local-docker.sh env)" '
    "(sets DOCKER_HOST, NOTEPIPE_REDIS_IMAGE, NOTEPIPE_POSTGRES_IMAGE and "
    "TESTCONTAINERS_RYUK_DISABLED=true), or choose another backend: NOTEPIPE_BACKEND=local."
)
LABEL = "org.notepipe.service"

_registry_lock = threading.Lock()
_registry: dict[int, DockerContainer] = {}
_atexit_installed = False


def redis_image(environ: Mapping[str, str] = os.environ) -> str:
    """``NOTEPIPE_REDIS_IMAGE`` or the official ``redis:7``."""
    return environ.get(REDIS_IMAGE_ENV) or DEFAULT_REDIS_IMAGE


def postgres_image(environ: Mapping[str, str] = os.environ) -> str:
    """``NOTEPIPE_POSTGRES_IMAGE`` or the official ``postgres:16``."""
    return environ.get(POSTGRES_IMAGE_ENV) or DEFAULT_POSTGRES_IMAGE


def remove_all() -> None:
    """Remove every container this process started and has not removed yet."""
    with _registry_lock:
        containers = list(_registry.values())
        _registry.clear()
    for container in containers:
        try:
            container.get_wrapped_container().remove(force=True, v=True)
        except Exception:  # noqa: S112 - best effort at exit; `local-docker.sh down` sweeps the rest
            continue


def _register(container: DockerContainer) -> None:
    global _atexit_installed  # noqa: PLW0603 - one atexit hook per process
    with _registry_lock:
        _registry[id(container)] = container
        if not _atexit_installed:
            atexit.register(remove_all)
            _atexit_installed = True


def _unregister(container: DockerContainer) -> None:
    with _registry_lock:
        _registry.pop(id(container), None)


class _ContainerService(LoopbackEndpoint):
    """The container lifecycle and faults shared by Redis and PostgreSQL."""

    backend: BackendName = "testcontainers"
    container_port: int
    start_timeout: float
    transient_errors: tuple[type[BaseException], ...]

    def __init__(self, image: str, password: str | None) -> None:
        self.image = image
        self._password = password if password is not None else secrets.token_urlsafe(24)
        self._port = free_port()
        self._container: DockerContainer | None = None
        self._version: str | None = None
        self._last_logs = ""
        self._created_once = False

    # -- what subclasses provide -------------------------------------------
    def _configure(self, container: DockerContainer) -> None:
        raise NotImplementedError

    def _probe(self) -> bool:
        """One readiness check: a real client connect; raises a transient error if not yet."""
        raise NotImplementedError

    def _redacted_url(self) -> str:
        raise NotImplementedError

    # -- Service -------------------------------------------------------------
    @property
    def container_id(self) -> str | None:
        return None if self._container is None else self._container.get_container_id()

    def __repr__(self) -> str:
        short = "none" if self._container is None else self._container.get_container_id()[:12]
        return (
            f"{type(self).__name__}(url={self._redacted_url()!r}, image={self.image!r}, "
            f"container={short}, {self._status()})"
        )

    def start(self) -> None:
        """Create and start the container (or start the stopped one), then wait until ready."""
        if self._container is None:
            self._create()
        elif self._status() == "paused":
            self.resume()
        elif self._status() != "running":
            self._docker().start()
        self._wait_ready()

    def stop(self) -> None:
        """Stop gracefully and remove the container; idempotent."""
        container = self._container
        if container is None:
            return
        try:
            wrapped = self._docker()
            wrapped.reload()
            if wrapped.status == "paused":
                wrapped.unpause()
            if wrapped.status in ("running", "paused"):
                wrapped.stop(timeout=STOP_TIMEOUT)
            self._last_logs = self.logs(LOG_TAIL)
        finally:
            self._remove()

    def kill(self) -> None:
        """``docker kill`` (SIGKILL); the stopped container stays for :meth:`restart`."""
        wrapped = self._docker()
        wrapped.reload()
        if wrapped.status in ("running", "paused"):
            wrapped.kill()

    def pause(self) -> None:
        self._docker().pause()

    def resume(self) -> None:
        self._docker().unpause()

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop and start on the same port; ``keep_data=False`` starts a new container."""
        if not keep_data:
            self._remove()
            self.start()
            return
        wrapped = self._docker()
        wrapped.reload()
        if wrapped.status == "paused":
            wrapped.unpause()
        if wrapped.status in ("running", "paused"):
            wrapped.stop(timeout=STOP_TIMEOUT)
        wrapped.start()
        self._wait_ready()

    def logs(self, tail: int = 50) -> str:
        """The container's last ``tail`` log lines (stdout and stderr)."""
        if self._container is None:
            return self._last_logs or "(no container)"
        try:
            raw: bytes = self._docker().logs(tail=tail)
        except Exception as exc:
            return f"(container logs unavailable: {exc})"
        return raw.decode(errors="replace").rstrip("\n")

    # -- internals -----------------------------------------------------------
    def _docker(self) -> Any:
        """The docker-py ``Container`` (untyped)."""
        if self._container is None:
            raise HarnessError(f"{self!r} has no container; call start() first")
        return self._container.get_wrapped_container()

    def _status(self) -> str:
        if self._container is None:
            return "no container"
        try:
            wrapped = self._docker()
            wrapped.reload()
        except Exception:
            return "unknown"
        return str(wrapped.status)

    def _create(self) -> None:
        # Until a port has been handed out, losing the race for it just means another port.
        attempts = 1 if self._created_once else 3
        for attempt in range(attempts):
            container = DockerContainer(self.image)
            self._configure(container)
            # Published on loopback only, on a port fixed for the service's lifetime.
            ports = cast("dict[str, object]", container.ports)
            ports[f"{self.container_port}/tcp"] = (LOOPBACK, self._port)
            container.with_kwargs(labels={LABEL: type(self).__name__})
            try:
                container.start()
            except Exception as exc:
                _remove_quietly(container)
                if attempt + 1 < attempts and _port_taken(exc):
                    self._port = free_port()
                    continue
                raise ServiceStartError(
                    f"{type(self).__name__}: could not start a container from {self.image} "
                    f"on {LOOPBACK}:{self._port}: {exc}\n{HINT}"
                ) from exc
            self._container = container
            self._created_once = True
            _register(container)
            return

    def _wait_ready(self) -> None:
        def ready() -> bool:
            status = self._status()
            if status in ("exited", "dead"):
                raise ServiceStartError(f"the container {status}")
            return self._probe()

        try:
            wait_until(
                ready,
                self.start_timeout,
                describe=f"{self._redacted_url()} ({self.image}) to accept a connection",
                transient=self.transient_errors,
            )
        except (WaitTimeout, ServiceStartError) as exc:
            self._fail(str(exc), exc)

    def _fail(self, reason: str, exc: BaseException) -> None:
        logs = self.logs(LOG_TAIL)
        self._remove()
        raise ServiceStartError(
            f"{type(self).__name__} did not start: {reason}\n"
            f"--- last {LOG_TAIL} lines of the container log ---\n{logs}\n{HINT}"
        ) from exc

    def _remove(self) -> None:
        container = self._container
        if container is None:
            return
        self._container = None
        _unregister(container)
        try:
            container.get_wrapped_container().remove(force=True, v=True)
        except Exception as exc:
            if "No such container" not in str(exc):
                raise


class ContainerRedis(_ContainerService):
    """``redis-server --requirepass`` in a container; ``appendonly`` fsyncs every write."""

    kind: ServiceKind = "redis"
    container_port = 6379
    start_timeout = 30.0
    transient_errors = (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        redis.exceptions.BusyLoadingError,
    )

    def __init__(
        self, password: str | None = None, *, appendonly: bool = False, image: str | None = None
    ) -> None:
        super().__init__(image or redis_image(), password)
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://default:{quote(self._password, safe='')}@{LOOPBACK}:{self._port}/0"

    def _redacted_url(self) -> str:
        return f"redis://default:***@{LOOPBACK}:{self._port}/0"

    @property
    def version(self) -> str:
        if self._version is None:
            client = self.client()
            try:
                info = client.info("server")
            finally:
                client.close()
            self._version = str(info["redis_version"])
        return self._version

    def client(self, *, socket_timeout: float = 5.0, retry: bool = True) -> redis.Redis[bytes]:
        """A client for DB 0; ``retry=False`` fails on the first timeout (redis-py retries 3x)."""
        options: dict[str, Any] = {} if retry else {"retry": Retry(NoBackoff(), 0)}
        return redis.Redis(
            host=LOOPBACK,
            port=self._port,
            password=self._password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            **options,
        )

    def _configure(self, container: DockerContainer) -> None:
        # Same persistence as the local backend: none, or an AOF fsynced on every write.
        command = ["redis-server", "--requirepass", self._password, "--save", ""]
        command += ["--appendonly", "yes" if self.appendonly else "no"]
        if self.appendonly:
            command += ["--appendfsync", "always"]
        container.with_command(command)

    def _probe(self) -> bool:
        client = self.client(socket_timeout=1.0, retry=False)  # wait_until does the retrying
        try:
            return bool(client.ping())
        except redis.exceptions.AuthenticationError as exc:
            raise ServiceStartError(f"Redis rejected our password: {exc}") from exc
        finally:
            client.close()


class ContainerPostgres(_ContainerService):
    """PostgreSQL in a container, password (scram-sha-256) auth over TCP."""

    kind: ServiceKind = "postgres"
    container_port = 5432
    start_timeout = 90.0
    transient_errors = (psycopg.OperationalError,)

    def __init__(
        self,
        user: str = "notepipe",
        password: str | None = None,
        database: str = "notepipe",
        *,
        image: str | None = None,
    ) -> None:
        super().__init__(image or postgres_image(), password)
        self.user = user
        self.database = database

    @property
    def url(self) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self._password, safe='')}"
            f"@{LOOPBACK}:{self._port}/{quote(self.database, safe='')}"
        )

    def _redacted_url(self) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:***@{LOOPBACK}:{self._port}"
            f"/{quote(self.database, safe='')}"
        )

    @property
    def version(self) -> str:
        """``SHOW server_version``'s number, e.g. ``15.13``."""
        if self._version is None:
            with psycopg.connect(self.url, connect_timeout=10) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            self._version = str(row[0]).split()[0] if row else "unknown"
        return self._version

    def connect(self, *, connect_timeout: int = 5) -> psycopg.Connection[Any]:
        """A new autocommit connection to the service's database."""
        return psycopg.connect(self.url, connect_timeout=connect_timeout, autocommit=True)

    def _configure(self, container: DockerContainer) -> None:
        container.with_env("POSTGRES_USER", self.user)
        container.with_env("POSTGRES_PASSWORD", self._password)
        container.with_env("POSTGRES_DB", self.database)

    def _probe(self) -> bool:
        try:
            with self.connect(connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise ServiceStartError(f"PostgreSQL rejected our password: {exc}") from exc
            raise
        return True


def _remove_quietly(container: DockerContainer) -> None:
    """Remove a container that failed to start, if it was created at all."""
    if getattr(container, "_container", None) is None:
        return
    with contextlib.suppress(Exception):  # the start error is what matters
        container.get_wrapped_container().remove(force=True, v=True)


def _port_taken(exc: BaseException) -> bool:
    text = str(exc)
    return "port is already allocated" in text or "address already in use" in text
