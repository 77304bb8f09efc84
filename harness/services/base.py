"""The service interface shared by every backend (local, testcontainers, external)."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

ServiceKind = Literal["redis", "postgres"]
BackendName = Literal["local", "testcontainers", "external"]


@runtime_checkable
class Service(Protocol):
    """A Redis or PostgreSQL server the harness can start, fault and observe.

    ``url`` carries the password (connect with it); ``repr`` must not.
    Faults (``kill``, ``pause``, ``restart``) raise ``HarnessError`` on the
    ``external`` backend, which never touches what it did not start.
    """

    kind: ServiceKind
    backend: BackendName

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def password(self) -> str: ...

    @property
    def url(self) -> str:
        """``redis://default:pw@127.0.0.1:port/0`` or ``postgresql://user:pw@127.0.0.1:port/db``."""
        ...

    @property
    def version(self) -> str: ...

    def start(self) -> None:
        """Start and block until ready (polling to a deadline)."""

    def stop(self) -> None:
        """Graceful stop; idempotent."""

    def kill(self) -> None:
        """SIGKILL the server (no graceful shutdown)."""

    def pause(self) -> None:
        """Freeze the server (SIGSTOP / docker pause)."""

    def resume(self) -> None:
        """Unfreeze after :meth:`pause`."""

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop (or kill) and start again on the same port; ``keep_data=False`` wipes data."""

    def logs(self, tail: int = 50) -> str:
        """The last ``tail`` lines of the server's log."""
