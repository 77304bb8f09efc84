"""The testcontainers backend against a real Docker engine.

Run after ``scripts/local-docker.sh up`` and ``eval "$(scripts/local-docker.sh env)"``.
Without a reachable engine these tests fail (never skip); deselect them with
``-m "not docker"`` where no Docker is wanted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import psycopg
import pytest
import redis
from testcontainers.core.container import DockerContainer
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

from harness.errors import HarnessError, ServiceStartError
from harness.services.base import Service
from harness.services.containers import STOP_TIMEOUT, ContainerPostgres, ContainerRedis
from harness.services.factory import DOCKER_HINT, docker_unreachable_reason
from harness.wait import wait_until

pytestmark = pytest.mark.docker

PASSWORD = "s3cret/pa:ss@word"


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    reason = docker_unreachable_reason()
    if reason is not None:
        pytest.fail(f"the docker-marked tests need a Docker engine: {reason}\n{DOCKER_HINT}")
    client = docker.from_env(version="auto")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_leftover_containers(docker_client: docker.DockerClient) -> Iterator[None]:
    """Every test removes every container it started (session-scoped services that an
    earlier test of the same run started, e.g. a chaos scenario's, are not its own)."""
    session = {"label": f"{LABEL_SESSION_ID}={SESSION_ID}"}
    before = {c.id for c in docker_client.containers.list(all=True, filters=session)}
    yield
    left = [
        c for c in docker_client.containers.list(all=True, filters=session) if c.id not in before
    ]
    assert left == [], f"containers left behind: {[c.name for c in left]}"


@pytest.fixture
def started() -> Iterator[list[Service]]:
    """Services appended here are stopped after the test, even if it fails."""
    services: list[Service] = []
    yield services
    for service in services:
        service.stop()


def _start(started: list[Service], service: Service) -> Service:
    started.append(service)
    service.start()
    return service


def _redis(started: list[Service], *, appendonly: bool = False) -> ContainerRedis:
    service = ContainerRedis(PASSWORD, appendonly=appendonly)
    _start(started, service)
    return service


def _postgres(started: list[Service]) -> ContainerPostgres:
    service = ContainerPostgres(password=PASSWORD)
    _start(started, service)
    return service


def _redis_down(service: ContainerRedis) -> bool:
    client = service.client(socket_timeout=0.5, retry=False)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        return True
    finally:
        client.close()
    return False


def test_redis_requires_its_password_on_loopback(
    started: list[Service], docker_client: docker.DockerClient
) -> None:
    service = _redis(started)
    assert service.url.startswith("redis://default:s3cret%2Fpa%3Ass%40word@127.0.0.1:")
    client = redis.Redis.from_url(service.url)
    try:
        assert client.ping()
    finally:
        client.close()
    anonymous = redis.Redis(host=service.host, port=service.port)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()
    assert service.version.startswith(("7.", "8."))
    assert service.container_id is not None
    bindings = docker_client.containers.get(service.container_id).ports["6379/tcp"]
    assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(service.port)}]


def test_postgres_requires_its_password(started: list[Service]) -> None:
    service = _postgres(started)
    assert service.url.startswith("postgresql://notepipe:s3cret%2Fpa%3Ass%40word@127.0.0.1:")
    with psycopg.connect(service.url) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("notepipe", "notepipe")
    wrong = service.url.replace("s3cret", "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    assert service.version.split(".")[0].isdigit()


def test_repr_redacts_the_password(started: list[Service]) -> None:
    service = ContainerRedis(PASSWORD)
    postgres = ContainerPostgres(password=PASSWORD)
    for unstarted in (service, postgres):
        assert PASSWORD not in repr(unstarted)
        assert "***" in repr(unstarted)
    _start(started, service)
    assert PASSWORD not in repr(service)
    assert "s3cret" not in repr(service)
    assert "running" in repr(service)


def test_redis_kill_loses_nothing_with_appendonly(started: list[Service]) -> None:
    service = _redis(started, appendonly=True)
    client = service.client()
    try:
        client.set("k", "v")
        port = service.port
        service.kill()
        wait_until(lambda: _redis_down(service), 10, describe="killed Redis to refuse")
        service.restart(keep_data=True)
        assert service.port == port
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_redis_without_appendonly_forgets_on_restart(started: list[Service]) -> None:
    service = _redis(started, appendonly=False)
    client = service.client()
    try:
        client.set("k", "v")
        service.restart(keep_data=True)
        assert client.get("k") is None
    finally:
        client.close()


def test_redis_restart_without_data_is_a_new_container(started: list[Service]) -> None:
    service = _redis(started, appendonly=True)
    first_id = service.container_id
    client = service.client()
    try:
        client.set("k", "v")
        service.restart(keep_data=False)
        assert service.container_id != first_id
        assert client.get("k") is None
    finally:
        client.close()


def test_paused_redis_times_out_clients_then_resumes(started: list[Service]) -> None:
    service = _redis(started)
    client = service.client(socket_timeout=0.5, retry=False)
    try:
        assert client.ping()
        service.pause()
        try:
            with pytest.raises(redis.TimeoutError):
                client.ping()
        finally:
            service.resume()
        assert wait_until(
            client.ping,
            5,
            describe="resumed Redis to answer",
            transient=(redis.TimeoutError, redis.ConnectionError),
        )
    finally:
        client.close()


def test_postgres_keeps_data_across_kill_and_restart(started: list[Service]) -> None:
    service = _postgres(started)
    with psycopg.connect(service.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    service.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(service.url, connect_timeout=2)
    service.restart(keep_data=True)
    with psycopg.connect(service.url) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    # A graceful restart is a fast shutdown: an idle open connection does not hold it up.
    with psycopg.connect(service.url) as idle:
        began = time.monotonic()
        service.restart(keep_data=True)
        assert time.monotonic() - began < STOP_TIMEOUT / 2
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
    service.restart(keep_data=False)
    with (
        psycopg.connect(service.url) as conn,
        pytest.raises(psycopg.errors.UndefinedTable),
    ):
        conn.execute("SELECT x FROM t")


def test_paused_postgres_refuses_then_resumes(started: list[Service]) -> None:
    service = _postgres(started)
    service.pause()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(service.url, connect_timeout=1)
    finally:
        service.resume()
    with psycopg.connect(service.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_logs_show_the_server_output(started: list[Service]) -> None:
    service = _redis(started)
    postgres = _postgres(started)
    assert "Ready to accept connections" in service.logs()
    assert "ready to accept connections" in postgres.logs(tail=20)
    assert len(service.logs(tail=2).splitlines()) <= 2


def test_stop_removes_the_container(docker_client: docker.DockerClient) -> None:
    service = ContainerRedis(PASSWORD)
    service.start()
    container_id = service.container_id
    service.stop()
    service.stop()  # idempotent
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container_id)
    assert "Ready to accept connections" in service.logs()
    with pytest.raises(HarnessError, match="start"):
        service.kill()


class _CrashingRedis(ContainerRedis):
    def _configure(self, container: DockerContainer) -> None:
        container.with_command(["sh", "-c", "echo the-server-crashed >&2; exit 3"])


def test_start_failure_carries_log_tail_and_hint() -> None:
    service = _CrashingRedis(PASSWORD)
    with pytest.raises(ServiceStartError) as caught:
        service.start()
    message = str(caught.value)
    assert "the-server-crashed" in message
    assert "Hint:" in message
    assert "local-docker.sh" in message
    assert service.container_id is None
