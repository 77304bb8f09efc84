"""Redis connections for RQ (binary-safe, with timeouts so faults surface as errors)."""

from __future__ import annotations

from redis import Redis

from notepipe.settings import Settings

SOCKET_TIMEOUT_S = 5.0


def redis_connection(
    settings: Settings, *, socket_timeout: float | None = SOCKET_TIMEOUT_S
) -> Redis[bytes]:
    """A Redis client for RQ. RQ needs raw bytes (``decode_responses=False``)."""
    return Redis.from_url(
        settings.redis_dsn,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        socket_timeout=socket_timeout,
        health_check_interval=10,
        client_name="notepipe",
    )
