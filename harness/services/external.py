"""Redis and PostgreSQL the harness did not start, given by URL (the ``external`` backend).

``start`` only checks that the server answers; ``stop`` does nothing; every
fault raises :class:`HarnessError`, since the external backend never touches
what it did not start.
"""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import SplitResult, unquote, urlsplit

import psycopg
import redis

from harness.errors import HarnessConfigError, HarnessError, ServiceStartError
from harness.services.base import BackendName, ServiceKind

CONNECT_TIMEOUT = 5


class _ExternalService:
    backend: BackendName = "external"
    default_port: int
    schemes: tuple[str, ...]

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in self.schemes or not parts.hostname:
            raise HarnessConfigError(
                f"{type(self).__name__} needs a {'/'.join(self.schemes)}:// URL with a host; "
                f"got scheme {parts.scheme!r} (the URL is not shown: it may hold a password; "
                "quote special characters in the password with %XX)"
            )
        self._url = url
        self._parts = parts
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.redacted_url!r})"

    @property
    def redacted_url(self) -> str:
        return _redact(self._parts)

    @property
    def url(self) -> str:
        return self._url

    @property
    def host(self) -> str:
        return self._parts.hostname or ""

    @property
    def port(self) -> int:
        return self._parts.port or self.default_port

    @property
    def password(self) -> str:
        return unquote(self._parts.password or "")

    def start(self) -> None:
        """Check that the server answers; it is not ours to start."""
        try:
            self._version = self._query_version()
        except Exception as exc:
            raise ServiceStartError(
                f"{self!r} is not reachable: {exc}\n"
                "Hint: the external backend connects to a server you run; check the URL "
                "(NOTEPIPE_EXTERNAL_REDIS_URL / NOTEPIPE_EXTERNAL_DATABASE_URL) and that the "
                "server is up, or choose NOTEPIPE_BACKEND=local."
            ) from exc

    def stop(self) -> None:
        """Nothing to do: the harness did not start this server."""

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self._query_version()
        return self._version

    def kill(self) -> None:
        self._refuse("kill")

    def pause(self) -> None:
        self._refuse("pause")

    def resume(self) -> None:
        self._refuse("resume")

    def restart(self, *, keep_data: bool = True) -> None:
        self._refuse("restart")

    def logs(self, tail: int = 50) -> str:
        return f"(no logs: {self!r} is an external server the harness does not run)"

    def _refuse(self, fault: str) -> NoReturn:
        raise HarnessError(
            f"cannot {fault} {self!r}: the external backend never touches what it did not "
            "start. Use NOTEPIPE_BACKEND=local or testcontainers for fault scenarios."
        )

    def _query_version(self) -> str:
        raise NotImplementedError


class ExternalRedis(_ExternalService):
    kind: ServiceKind = "redis"
    default_port = 6379
    schemes = ("redis", "rediss")

    def _query_version(self) -> str:
        client: redis.Redis[bytes] = redis.Redis.from_url(
            self._url, socket_timeout=CONNECT_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT
        )
        try:
            info = client.info("server")
        finally:
            client.close()
        return str(info["redis_version"])


class ExternalPostgres(_ExternalService):
    kind: ServiceKind = "postgres"
    default_port = 5432
    schemes = ("postgresql", "postgres")

    def _query_version(self) -> str:
        with psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "unknown"


def _redact(parts: SplitResult) -> str:
    """The URL with its password replaced by ``***``."""
    if parts.password is None:
        return parts.geturl()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()
