"""Which backend runs Redis and PostgreSQL, and the services it makes.

Precedence: the CLI option, then ``NOTEPIPE_BACKEND``, then auto-detection
(``testcontainers`` when a Docker engine answers a ping, else ``local``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import get_args

from harness.errors import HarnessConfigError
from harness.services.base import BackendName, Service

BACKEND_ENV = "NOTEPIPE_BACKEND"
EXTERNAL_REDIS_ENV = "NOTEPIPE_EXTERNAL_REDIS_URL"
EXTERNAL_DATABASE_ENV = "NOTEPIPE_EXTERNAL_DATABASE_URL"
AUTO = "auto"
BACKENDS: tuple[BackendName, ...] = get_args(BackendName)
DEFAULT_DOCKER_SOCKET = Path("/var/run/docker.sock")
PING_TIMEOUT = 3
DOCKER_HINT = (
    "Hint: start a private Docker engine with locally built images: "
    'sudo scripts/local-docker.sh up && eval "$(scripts/local-docker.sh env)"; '
    "or use NOTEPIPE_BACKEND=local."
)


def docker_unreachable_reason(environ: Mapping[str, str] = os.environ) -> str | None:
    """``None`` if a Docker engine answers a ping, else why not."""
    docker_host = environ.get("DOCKER_HOST")
    if not docker_host and not DEFAULT_DOCKER_SOCKET.exists():
        return f"DOCKER_HOST is not set and {DEFAULT_DOCKER_SOCKET} does not exist"
    where = docker_host or f"unix://{DEFAULT_DOCKER_SOCKET}"
    try:
        import docker

        client = docker.DockerClient(base_url=where, version="auto", timeout=PING_TIMEOUT)
    except Exception as exc:
        return f"no Docker engine at {where}: {exc}"
    try:
        client.ping()
    except Exception as exc:
        return f"the Docker engine at {where} does not answer a ping: {exc}"
    finally:
        client.close()
    return None


def detect_backend(environ: Mapping[str, str] = os.environ) -> BackendName:
    """``testcontainers`` if Docker is reachable, else ``local``."""
    return "testcontainers" if docker_unreachable_reason(environ) is None else "local"


def resolve_backend(option: str | None, environ: Mapping[str, str] = os.environ) -> BackendName:
    """The backend from the CLI ``option``, else ``NOTEPIPE_BACKEND``, else auto-detection."""
    if option:
        value, source = option, "the --notepipe-backend option"
    elif environ.get(BACKEND_ENV):
        value, source = environ[BACKEND_ENV], BACKEND_ENV
    else:
        return detect_backend(environ)
    value = value.strip().lower()
    if value == AUTO:
        return detect_backend(environ)
    backend = next((name for name in BACKENDS if name == value), None)
    if backend is None:
        valid = ", ".join((*BACKENDS, AUTO))
        raise HarnessConfigError(f"unknown backend {value!r} from {source}; valid: {valid}")
    if backend == "testcontainers":
        reason = docker_unreachable_reason(environ)
        if reason is not None:
            raise HarnessConfigError(
                f"backend 'testcontainers' was requested by {source} but Docker is "
                f"unreachable: {reason}\n{DOCKER_HINT}"
            )
    return backend


def make_redis(
    backend: BackendName, *, appendonly: bool = False, environ: Mapping[str, str] = os.environ
) -> Service:
    """An unstarted Redis service on ``backend`` (``appendonly`` is ignored for ``external``)."""
    if backend == "local":
        from harness.services.local_redis import LocalRedis

        return LocalRedis(appendonly=appendonly)
    if backend == "testcontainers":
        from harness.services.containers import ContainerRedis, redis_image

        return ContainerRedis(appendonly=appendonly, image=redis_image(environ))
    from harness.services.external import ExternalRedis

    return ExternalRedis(_external_url(EXTERNAL_REDIS_ENV, environ))


def make_postgres(backend: BackendName, *, environ: Mapping[str, str] = os.environ) -> Service:
    """An unstarted PostgreSQL service on ``backend``."""
    if backend == "local":
        from harness.services.local_postgres import LocalPostgres

        return LocalPostgres()
    if backend == "testcontainers":
        from harness.services.containers import ContainerPostgres, postgres_image

        return ContainerPostgres(image=postgres_image(environ))
    from harness.services.external import ExternalPostgres

    return ExternalPostgres(_external_url(EXTERNAL_DATABASE_ENV, environ))


def _external_url(name: str, environ: Mapping[str, str]) -> str:
    url = environ.get(name)
    if not url:
        raise HarnessConfigError(
            f"the external backend needs {name} (a URL with the password); it is not set"
        )
    return url
