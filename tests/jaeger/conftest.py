"""The real Jaeger for these tests: the locally built binary (``make peers``).

Where it is missing the tests fail, saying how to build it (see
:func:`tests.peer_helpers.missing_peer`); they skip only where Go cannot build it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.collector import TraceCollector
from harness.fault_spans import HarnessTracing
from harness.jaeger import JaegerNotFound, JaegerQuery, JaegerServer, find_jaeger
from tests.peer_helpers import missing_peer


@pytest.fixture(scope="session")
def jaeger_binary() -> Path:
    try:
        return find_jaeger()
    except JaegerNotFound as exc:
        missing_peer(str(exc))


@pytest.fixture
def jaeger(jaeger_binary: Path, tmp_path: Path) -> Iterator[JaegerServer]:
    """A fresh Jaeger (empty in-memory store) for one test."""
    with JaegerServer(jaeger_binary, workdir=tmp_path / "jaeger") as server:
        yield server


@pytest.fixture
def jaeger_query(jaeger: JaegerServer) -> Iterator[JaegerQuery]:
    with JaegerQuery(jaeger.query_url) as query:
        yield query


# The scenario test's own collector and harness tracer, forwarding to its Jaeger (the
# plugin's forward only with --notepipe-jaeger[-endpoint]). Session scope, as the
# plugin's session fixtures that use them (the service-time calibration) need; they
# only exist for the tests of this folder.


@pytest.fixture(scope="session")
def folder_jaeger(
    jaeger_binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JaegerServer]:
    with JaegerServer(jaeger_binary, workdir=tmp_path_factory.mktemp("jaeger")) as server:
        yield server


@pytest.fixture(scope="session")
def trace_collector(
    folder_jaeger: JaegerServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TraceCollector]:
    with TraceCollector(
        tmp_path_factory.mktemp("spans") / "spans.jsonl",
        forward_endpoint=folder_jaeger.otlp_endpoint,
    ) as collector:
        yield collector


@pytest.fixture(scope="session")
def harness_tracing(trace_collector: TraceCollector) -> Iterator[HarnessTracing]:
    with HarnessTracing(trace_collector.endpoint) as tracing:
        yield tracing
