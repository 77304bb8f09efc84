"""Backend selection, and the external backend against a redis-server this test starts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import redis

from harness.errors import HarnessConfigError, HarnessError, ServiceStartError
from harness.services.containers import ContainerPostgres, ContainerRedis
from harness.services.external import ExternalPostgres, ExternalRedis
from harness.services.factory import (
    detect_backend,
    make_postgres,
    make_redis,
    resolve_backend,
)
from harness.services.ports import free_port
from harness.wait import wait_until

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/notepipe-test/docker.sock"}
PASSWORD = "ext/pa:ss@word"
QUOTED = "ext%2Fpa%3Ass%40word"


def test_option_beats_env_beats_auto() -> None:
    assert resolve_backend("local", {**NO_DOCKER, "NOTEPIPE_BACKEND": "external"}) == "local"
    assert resolve_backend(None, {**NO_DOCKER, "NOTEPIPE_BACKEND": "external"}) == "external"
    assert resolve_backend("", {**NO_DOCKER, "NOTEPIPE_BACKEND": " External "}) == "external"
    assert resolve_backend(None, NO_DOCKER) == "local"
    assert resolve_backend("auto", NO_DOCKER) == "local"
    assert detect_backend(NO_DOCKER) == "local"


def test_invalid_backend_lists_the_valid_ones() -> None:
    with pytest.raises(HarnessConfigError, match="local, testcontainers, external, auto") as err:
        resolve_backend(None, {"NOTEPIPE_BACKEND": "kubernetes"})
    assert "NOTEPIPE_BACKEND" in str(err.value)
    with pytest.raises(HarnessConfigError, match="--notepipe-backend"):
        resolve_backend("podman", {})


def test_testcontainers_without_docker_says_how_to_get_it() -> None:
    with pytest.raises(HarnessConfigError, match=r"unreachable.*\n.*scripts/local-docker\.sh up"):
        resolve_backend("testcontainers", NO_DOCKER)


def test_make_returns_each_backend_unstarted() -> None:
    env = {
        "NOTEPIPE_REDIS_IMAGE": "example/redis:1",
        "NOTEPIPE_POSTGRES_IMAGE": "example/postgres:1",
        "NOTEPIPE_EXTERNAL_REDIS_URL": f"redis://:{QUOTED}@db.example:6380/2",
        "NOTEPIPE_EXTERNAL_DATABASE_URL": "postgresql://u:pw@db.example/app",
    }
    redis_service = make_redis("testcontainers", appendonly=True, environ=env)
    assert isinstance(redis_service, ContainerRedis)
    assert (redis_service.image, redis_service.appendonly) == ("example/redis:1", True)
    postgres_service = make_postgres("testcontainers", environ=env)
    assert isinstance(postgres_service, ContainerPostgres)
    assert postgres_service.image == "example/postgres:1"
    assert isinstance(make_redis("external", environ=env), ExternalRedis)
    assert isinstance(make_postgres("external", environ=env), ExternalPostgres)
    assert make_redis("local").backend == "local"
    assert make_postgres("local").backend == "local"


def test_external_without_url_is_a_config_error() -> None:
    with pytest.raises(HarnessConfigError, match="NOTEPIPE_EXTERNAL_REDIS_URL"):
        make_redis("external", environ={})
    with pytest.raises(HarnessConfigError, match="NOTEPIPE_EXTERNAL_DATABASE_URL"):
        make_postgres("external", environ={})
    with pytest.raises(HarnessConfigError, match="needs a redis") as err:
        ExternalRedis(f"redis://:{PASSWORD}@example.com/")  # unquoted: no host parses
    assert "pa:ss" not in str(err.value)


def test_external_postgres_parses_its_url_and_redacts_it() -> None:
    service = ExternalPostgres("postgresql://app:p%40ss@db.example:6543/notes")
    assert (service.host, service.port, service.password) == ("db.example", 6543, "p@ss")
    assert "p%40ss" not in repr(service)
    assert "postgresql://app:***@db.example:6543/notes" in repr(service)
    assert ExternalPostgres("postgresql://app@db.example/notes").port == 5432


def test_external_start_fails_clearly_when_unreachable() -> None:
    url = f"redis://:{QUOTED}@127.0.0.1:{free_port()}/0"
    with pytest.raises(ServiceStartError, match="not reachable") as err:
        ExternalRedis(url).start()
    assert QUOTED not in str(err.value)
    assert "NOTEPIPE_EXTERNAL_REDIS_URL" in str(err.value)
    pg_url = f"postgresql://u:{QUOTED}@127.0.0.1:{free_port()}/db"
    with pytest.raises(ServiceStartError, match="not reachable"):
        ExternalPostgres(pg_url).start()


@pytest.fixture
def own_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server with a password, started (and killed) by this fixture."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not on PATH (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("external-redis")
    config = f'port {port}\nbind 127.0.0.1\nrequirepass "{PASSWORD}"\nsave ""\ndir {workdir}\n'
    proc = subprocess.Popen(
        [binary, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(config.encode())
        proc.stdin.close()
        client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD, socket_timeout=1)
        try:
            wait_until(
                client.ping,
                10,
                describe=f"redis-server on 127.0.0.1:{port}",
                transient=(redis.ConnectionError, redis.TimeoutError),
            )
        finally:
            client.close()
        yield f"redis://:{QUOTED}@127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_external_redis_is_used_but_never_touched(own_redis_url: str) -> None:
    service = ExternalRedis(own_redis_url)
    assert (service.host, service.password) == ("127.0.0.1", PASSWORD)
    assert PASSWORD not in repr(service)
    assert QUOTED not in repr(service)
    service.start()
    assert service.version.startswith(("6.", "7.", "8."))
    for fault in (service.kill, service.pause, service.resume, service.restart):
        with pytest.raises(HarnessError, match="never touches what it did not start"):
            fault()
    service.stop()
    client = redis.Redis.from_url(service.url, socket_timeout=2)
    try:
        assert client.ping()  # stop() left it running
    finally:
        client.close()
    assert "external" in service.logs()


@pytest.mark.docker
def test_testcontainers_resolves_where_docker_answers() -> None:
    """Run with the env from ``scripts/local-docker.sh env``."""
    assert resolve_backend("testcontainers") == "testcontainers"
    assert detect_backend() == "testcontainers"
