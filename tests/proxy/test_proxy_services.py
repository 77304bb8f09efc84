"""Real Redis (redis-py) and PostgreSQL (psycopg) clients through the proxy.

The services are the harness's session fixtures (``redis_service``,
``postgres_service``), started and stopped by the harness; these tests only
connect to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.proxy.client import ProxyHandle
from harness.proxy.launcher import ToxiproxyServer
from harness.services.base import Service
from harness.wait import wait_until


@pytest.fixture
def redis_proxy(proxy_server: ToxiproxyServer, redis_service: Service) -> Iterator[ProxyHandle]:
    proxy = proxy_server.create_proxy("svc_redis", f"{redis_service.host}:{redis_service.port}")
    try:
        yield proxy
    finally:
        proxy.delete()


@pytest.fixture
def postgres_proxy(
    proxy_server: ToxiproxyServer, postgres_service: Service
) -> Iterator[ProxyHandle]:
    proxy = proxy_server.create_proxy("svc_pg", f"{postgres_service.host}:{postgres_service.port}")
    try:
        yield proxy
    finally:
        proxy.delete()


def redis_client(proxy: ProxyHandle, service: Service) -> redis.Redis:
    return redis.Redis(
        host=proxy.listen_host,
        port=proxy.listen_port,
        password=service.password,
        socket_timeout=10,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),  # a fault must surface, not be retried away
    )


def pg_connect(proxy: ProxyHandle, service: Service) -> psycopg.Connection[tuple[object, ...]]:
    url = service.url.replace(
        f"{service.host}:{service.port}", f"{proxy.listen_host}:{proxy.listen_port}"
    )
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def timed(action: object) -> float:
    start = time.perf_counter()
    assert callable(action)
    action()
    return time.perf_counter() - start


def test_redis_latency_reset_down_and_heal(
    redis_proxy: ProxyHandle, redis_service: Service
) -> None:
    client = redis_client(redis_proxy, redis_service)
    try:
        assert client.ping()
        assert timed(client.ping) < 0.15
        with redis_proxy.toxic("latency", latency=150):
            assert 0.149 <= timed(client.ping) < 2.0
        assert timed(client.ping) < 0.15

        with redis_proxy.toxic("reset_peer", stream="upstream"):
            fresh = redis_client(redis_proxy, redis_service)
            with pytest.raises(redis.ConnectionError):
                fresh.ping()
            fresh.close()
        with redis_proxy.down():
            with pytest.raises(redis.ConnectionError):
                client.ping()  # the open connection is closed ...
            refused = redis_client(redis_proxy, redis_service)
            with pytest.raises(redis.ConnectionError, match=r"refused|Connection"):
                refused.ping()  # ... and new ones are refused
            refused.close()
        wait_until(
            client.ping,
            10,
            describe="Redis through the healed proxy",
            transient=(redis.ConnectionError,),
        )
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_postgres_latency_reset_down_and_heal(
    postgres_proxy: ProxyHandle, postgres_service: Service
) -> None:
    with pg_connect(postgres_proxy, postgres_service) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        with postgres_proxy.toxic("latency", latency=150):
            elapsed = timed(lambda: conn.execute("select 1").fetchone())
            assert 0.149 <= elapsed < 2.0
        assert timed(lambda: conn.execute("select 1").fetchone()) < 0.15
        with (
            postgres_proxy.toxic("reset_peer", stream="upstream"),
            pytest.raises(psycopg.OperationalError),
        ):
            conn.execute("select 1")
    with postgres_proxy.down(), pytest.raises(psycopg.OperationalError):
        pg_connect(postgres_proxy, postgres_service)

    def healed() -> bool:
        with pg_connect(postgres_proxy, postgres_service) as conn:
            return conn.execute("select 2").fetchone() == (2,)

    wait_until(
        healed,
        10,
        describe="PostgreSQL through the healed proxy",
        transient=(psycopg.OperationalError,),
    )
