"""LocalRedis: a real redis-server we start, fault and stop."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import reaper
from harness.errors import HarnessError, ServiceStartError
from harness.services.base import Service
from harness.services.local_redis import LocalRedis
from harness.services.ports import free_port
from harness.wait import wait_until
from tests.services.tracked import tracked


@pytest.fixture
def make_redis() -> Iterator[type[LocalRedis]]:
    """LocalRedis instances made in a test, all stopped at its end."""
    yield from tracked(LocalRedis)


def _ping(service: LocalRedis, timeout: float = 2.0) -> bool:
    client = service.client(socket_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()


def test_start_stop(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    assert isinstance(service, Service)
    service.start()
    service.start()  # idempotent
    assert _ping(service)
    assert redis.Redis.from_url(service.url).ping()
    assert re.fullmatch(r"\d+\.\d+\.\d+", service.version)
    assert service.kind == "redis"
    assert service.backend == "local"
    service.stop()
    service.stop()  # idempotent
    assert not service.running
    with pytest.raises(redis.ConnectionError):
        _ping(service)


def test_kill_then_start_again(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    service.start()
    proc = service._proc
    assert proc is not None
    service.kill()
    assert proc.returncode == -9
    assert not reaper.live_group_members(proc.pid)
    with pytest.raises(redis.ConnectionError):
        _ping(service)
    service.start()
    assert _ping(service)


def test_pause_and_resume(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    service.start()
    service.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            _ping(service, timeout=0.3)
    finally:
        service.resume()
    assert wait_until(lambda: _ping(service), 5, describe="redis to answer after resume")
    service.stop()
    with pytest.raises(HarnessError, match="not running"):
        service.pause()


def test_stop_while_paused(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    service.start()
    service.pause()
    service.stop()
    assert not service.running


@pytest.mark.parametrize(("appendonly", "survives"), [(True, True), (False, False)])
def test_restart_keeps_data_only_with_appendonly(
    make_redis: type[LocalRedis], appendonly: bool, survives: bool
) -> None:
    service = make_redis(appendonly=appendonly)
    service.start()
    port = service.port
    service.client().set("note:1", "queued")
    service.restart()
    assert service.port == port
    expected = b"queued" if survives else None
    assert service.client().get("note:1") == expected


def test_data_survives_sigkill_with_appendonly(make_redis: type[LocalRedis]) -> None:
    service = make_redis(appendonly=True)
    service.start()
    service.client().rpush("queue", "a", "b")
    service.kill()
    service.start()
    assert service.client().lrange("queue", 0, -1) == [b"a", b"b"]


def test_restart_without_data_wipes_it(make_redis: type[LocalRedis]) -> None:
    service = make_redis(appendonly=True)
    service.start()
    service.client().set("k", "v")
    service.restart(keep_data=False)
    assert service.client().get("k") is None


def test_password_is_required(make_redis: type[LocalRedis]) -> None:
    service = make_redis(password="s3cret-pw")
    service.start()
    assert service.password == "s3cret-pw"
    assert service.url == f"redis://default:s3cret-pw@127.0.0.1:{service.port}/0"
    no_retry = Retry(NoBackoff(), 0)
    anonymous = redis.Redis(host="127.0.0.1", port=service.port, socket_timeout=2, retry=no_retry)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(
        host="127.0.0.1", port=service.port, password="nope", socket_timeout=2, retry=no_retry
    )
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()


def test_generated_passwords_differ() -> None:
    assert len(LocalRedis().password) >= 24
    assert LocalRedis().password != LocalRedis().password


def test_repr_hides_the_password(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    assert service.password not in repr(service)
    service.start()
    assert service.password not in repr(service)
    assert service.password not in str(service)
    assert str(service.port) in repr(service)


def test_start_failure_carries_log_tail_and_hint(make_redis: type[LocalRedis]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = make_redis(port=port)
        with pytest.raises(ServiceStartError) as info:
            service.start()
    message = str(info.value)
    assert "Address already in use" in message
    assert "Hint:" in message
    assert service.password not in message
    assert not service.running


def test_missing_binary_says_how_to_install(
    make_redis: type[LocalRedis], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServiceStartError, match=r"Hint: install redis-server"):
        make_redis().start()


def test_logs_tail(make_redis: type[LocalRedis]) -> None:
    service = make_redis()
    assert "no log" in service.logs()
    service.start()
    assert "Ready to accept connections" in service.logs()
    assert len(service.logs(tail=2).splitlines()) == 2


def test_fixed_port_and_workdir(make_redis: type[LocalRedis], tmp_path: object) -> None:
    port = free_port()
    service = make_redis(port=port)
    service.start()
    assert service.port == port
    assert service.client().config_get("dir")["dir"].startswith(str(service.workdir))
