"""The probes network faults use to show they bit, against real Redis and PostgreSQL behind
the proxy: each toxic the scenarios use must be visible to a probe, and a clean path must
not look faulty (or a fault that missed would pass for one that bit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.faults.network import (
    PROBE_TIMEOUT_S,
    VOLUME_PROBE_BYTES,
    expected_effect,
    masked,
    shows_effect,
)
from harness.faults.probe import Endpoint, probe
from harness.proxy.client import ProxyHandle
from harness.proxy.launcher import ToxiproxyServer
from harness.services.base import Service


@pytest.fixture
def paths(
    proxy_server: ToxiproxyServer, redis_service: Service, postgres_service: Service
) -> Iterator[dict[str, tuple[ProxyHandle, Endpoint]]]:
    made: dict[str, tuple[ProxyHandle, Endpoint]] = {}
    try:
        for name, service in (("redis", redis_service), ("postgres", postgres_service)):
            proxy = proxy_server.create_proxy(f"probe_{name}", f"{service.host}:{service.port}")
            endpoint = Endpoint(name, proxy.listen_host, proxy.listen_port, service.password)
            made[name] = (proxy, endpoint)
        yield made
    finally:
        for proxy, _ in made.values():
            proxy.delete()


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("redis", "latency", {"latency": 150, "jitter": 50}),
    ("redis", "reset_peer", {"timeout": 0}),
    ("redis", "timeout", {"timeout": 0}),
    ("redis", "slicer", {"average_size": 16, "size_variation": 8, "delay": 200}),
    ("redis", "bandwidth", {"rate": 32}),
    ("postgres", "latency", {"latency": 100, "jitter": 20}),
    ("postgres", "reset_peer", {"timeout": 0}),
]


def _probe(endpoint: Endpoint, toxic: str) -> Any:
    volume = toxic in ("slicer", "bandwidth") and endpoint.service == "redis"
    return probe(endpoint, payload=VOLUME_PROBE_BYTES if volume else 0, timeout=PROBE_TIMEOUT_S)


@pytest.mark.parametrize(("service", "toxic", "attributes"), CASES)
def test_each_toxic_shows_in_a_probe_and_a_clean_path_does_not(
    paths: dict[str, tuple[ProxyHandle, Endpoint]],
    service: str,
    toxic: str,
    attributes: dict[str, Any],
) -> None:
    proxy, endpoint = paths[service]
    clean = _probe(endpoint, toxic)
    assert clean.outcome == "ok", clean
    assert shows_effect(toxic, attributes, clean) is None, (toxic, clean)
    assert expected_effect(toxic, attributes) is not None or toxic in ("slicer", "bandwidth")
    proxy.add_toxic(toxic, name="t", stream="downstream", toxicity=1.0, attributes=attributes)
    try:
        faulty = _probe(endpoint, toxic)
    finally:
        proxy.remove_toxic("t")
    assert shows_effect(toxic, attributes, faulty) is not None, (toxic, faulty)
    assert _probe(endpoint, toxic).outcome == "ok"


@pytest.mark.parametrize("service", ["redis", "postgres"])
def test_a_disabled_proxy_refuses_the_probe(
    paths: dict[str, tuple[ProxyHandle, Endpoint]], service: str
) -> None:
    proxy, endpoint = paths[service]
    proxy.disable()
    try:
        down = probe(endpoint, timeout=1.0)
        assert down.failed
        # A toxic added while the path is down is masked, not shown: judged again at heal.
        assert all(masked(toxic, down) for toxic in ("latency", "reset_peer", "timeout"))
    finally:
        proxy.enable()
    assert probe(endpoint, timeout=1.0).outcome == "ok"


def _toxic_fault(
    tmp_path: Any, proxy: ProxyHandle, redis_service: Service, postgres_service: Service
) -> Any:
    """A real ``toxic`` fault on a (never started) stack whose Redis path is ``proxy``."""
    import random

    from harness.collector import TraceCollector
    from harness.faults import FaultSpec, build_fault
    from harness.proxy.paths import ToxiproxyPath
    from harness.stack import PipelineStack, StackOptions

    stack = PipelineStack(
        redis_service=redis_service,
        postgres_service=postgres_service,
        collector=TraceCollector(tmp_path / "spans.jsonl"),
        workdir=tmp_path,
        options=StackOptions(workers=0),
        proxies={"redis": ToxiproxyPath(proxy)},
    )
    spec = FaultSpec(
        "toxic",
        at=0,
        duration=1,
        target="redis",
        params={"type": "latency", "attributes": {"latency": 150}},
    )
    return build_fault(stack, spec, random.Random(1))


@pytest.mark.parametrize("path_back_before_heal", [True, False])
def test_a_toxic_masked_by_a_cut_path_is_judged_again_at_heal(
    tmp_path: Any,
    paths: dict[str, tuple[ProxyHandle, Endpoint]],
    redis_service: Service,
    postgres_service: Service,
    path_back_before_heal: bool,
) -> None:
    proxy, _ = paths["redis"]
    fault = _toxic_fault(tmp_path, proxy, redis_service, postgres_service)
    proxy.disable()
    try:
        fault.inject()
        assert fault.effect.hit is None and "masked" in fault.effect.evidence
        if path_back_before_heal:
            proxy.enable()
        fault.heal()
    finally:
        proxy.enable()
    if path_back_before_heal:
        assert fault.effect.hit is True and "at heal" in fault.effect.summary, fault.effect
    else:
        assert fault.effect.hit is False, fault.effect
        assert "showed no latency" in (fault.effect.missed or "")
