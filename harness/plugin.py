"""The notepipe pytest plugin (entry point ``pytest11: notepipe``).

Options pick the service backend (reported in the header), where reports go and
where traces are forwarded; fixtures build services, proxies, the collector, the
pipeline stack and scenario runs; at the end a verdict table is printed and the
run's report written to ``<report-dir>/<run-id>/`` and ``<report-dir>/latest/``.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import HarnessConfigError
from harness.session import SESSION_KEY, NotepipeSession, backend_versions, new_run_id

if TYPE_CHECKING:
    from harness.record import ScenarioRecord

pytest_plugins = [
    "harness.fixtures.services",
    "harness.fixtures.pipeline",
    "harness.fixtures.scenario",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("notepipe", "notepipe reliability harness")
    group.addoption(
        "--notepipe-backend",
        default=None,
        help="services backend: auto (default: testcontainers when Docker answers, else local), "
        "local, testcontainers, external (NOTEPIPE_BACKEND)",
    )
    group.addoption(
        "--notepipe-report-dir", default=None, help="where run reports go (default: reports)"
    )
    group.addoption(
        "--notepipe-jaeger-endpoint",
        default=None,
        help="forward every span to this OTLP/HTTP endpoint too (your own Jaeger or "
        "Collector), e.g. http://127.0.0.1:4318",
    )
    group.addoption(
        "--notepipe-jaeger",
        action="store_true",
        default=False,
        help="start the locally built Jaeger (in-memory, loopback ports) for the run, forward "
        "every span to it and check at the end that Jaeger returns them",
    )
    group.addoption(
        "--notepipe-jaeger-bin",
        default=None,
        metavar="PATH",
        help="the Jaeger binary for --notepipe-jaeger (NOTEPIPE_JAEGER_BIN; default: "
        ".peers/bin/jaeger of the checkout, then `jaeger` on PATH)",
    )
    group.addoption(
        "--notepipe-soak",
        type=int,
        default=None,
        metavar="N",
        help="run N Hypothesis examples of mixed fault schedules (a long soak) instead of CI's few",
    )
    group.addoption(
        "--notepipe-service-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="per-note service-time budget of the deadline oracle (seconds one worker may "
        "spend per note); default: calibrated once per session before the first scenario",
    )
    parser.addini("notepipe_backend", "default services backend", default="")
    parser.addini("notepipe_report_dir", "default report directory", default="reports")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    from harness.services.factory import resolve_backend

    option = config.getoption("--notepipe-backend") or config.getini("notepipe_backend") or None
    try:
        backend = resolve_backend(option)
    except HarnessConfigError as exc:
        raise pytest.UsageError(f"notepipe: {exc}") from None
    soak = config.getoption("--notepipe-soak")
    if soak is not None and soak < 1:
        raise pytest.UsageError("notepipe: --notepipe-soak takes a positive number of examples")
    workerinput = getattr(config, "workerinput", None)
    run_id = workerinput["notepipe_run_id"] if workerinput else new_run_id()
    report_root = Path(
        config.getoption("--notepipe-report-dir") or config.getini("notepipe_report_dir")
    )
    endpoint = config.getoption("--notepipe-jaeger-endpoint")
    if endpoint and config.getoption("--notepipe-jaeger"):
        raise pytest.UsageError(
            "notepipe: --notepipe-jaeger starts a Jaeger of its own and forwards to it; "
            "--notepipe-jaeger-endpoint forwards to yours: use one of them"
        )
    session = NotepipeSession(
        backend=backend,
        run_id=run_id,
        report_root=report_root.resolve(),
        jaeger_endpoint=endpoint,
        soak_examples=soak,
    )
    if workerinput:
        session.jaeger_endpoint = workerinput.get("notepipe_jaeger_endpoint") or endpoint
        session.jaeger_query_url = workerinput.get("notepipe_jaeger_query_url")
    elif config.getoption("--notepipe-jaeger"):
        _start_jaeger(config, session)
    config.stash[SESSION_KEY] = session
    if not workerinput and getattr(config.option, "xmlpath", None) is None:
        # Every run's report carries its JUnit XML (pytest writes it at session end).
        config.option.xmlpath = str(session.report_root / run_id / "junit.xml")
    _CONFIG["config"] = config


_JAEGER_KEY = pytest.StashKey[Any]()


def _start_jaeger(config: pytest.Config, session: NotepipeSession) -> None:
    """``--notepipe-jaeger``: start the local Jaeger (stopped in ``pytest_unconfigure``)."""
    from harness.errors import HarnessError
    from harness.jaeger.server import JaegerServer, find_jaeger

    try:
        server = JaegerServer(find_jaeger(config.getoption("--notepipe-jaeger-bin")))
        server.start()
    except HarnessError as exc:
        raise pytest.UsageError(f"notepipe: --notepipe-jaeger: {exc}") from None
    config.stash[_JAEGER_KEY] = server
    session.jaeger_endpoint = server.otlp_endpoint
    session.jaeger_query_url = server.query_url
    session.versions["jaeger"] = f"{server.version()} ({server.query_url})"
    session.service_versions["jaeger"] = f"{server.version()} (local, {server.binary})"


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_JAEGER_KEY, None)
    if server is not None:
        server.stop()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller → worker: share the run id (so all parts land in one report) and
    the run's Jaeger."""
    session = node.config.stash[SESSION_KEY]
    node.workerinput["notepipe_run_id"] = session.run_id
    node.workerinput["notepipe_jaeger_endpoint"] = session.jaeger_endpoint
    node.workerinput["notepipe_jaeger_query_url"] = session.jaeger_query_url


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[SESSION_KEY]
    session.versions = {**backend_versions(session.backend), **session.versions}
    versions = ", ".join(f"{k} {v}" for k, v in session.versions.items())
    return [f"notepipe: backend={session.backend} ({versions}); run {session.run_id}"]


def record_outcome(config: pytest.Config, record: ScenarioRecord, nodeid: str) -> None:
    """Store a scenario's record, with its test's node id, for the run report (a pickle per
    scenario, so xdist workers' records reach the controller through the shared report
    directory)."""
    session = config.stash[SESSION_KEY]
    session.parts_dir.mkdir(parents=True, exist_ok=True)
    key = f"{nodeid}::{record.name}"
    safe = "".join(c if c.isalnum() else "_" for c in key)[-150:]
    target = session.parts_dir / f"{safe}.pkl"
    tmp = target.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(dataclasses.replace(record, nodeid=nodeid), fh)
    tmp.replace(target)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each test's outcome (in the controller too, under xdist) for the report."""
    config = getattr(report, "config", None) or _CONFIG.get("config")
    if config is None:
        return
    outcomes = config.stash[SESSION_KEY].outcomes
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcomes[report.nodeid] = (
            "error" if report.when == "setup" and report.failed else report.outcome
        )


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if getattr(session.config, "workerinput", None):
        return  # an xdist worker: the controller writes the report
    from harness.report.session import write_session_report

    nsession = session.config.stash[SESSION_KEY]
    try:
        write_session_report(session.config, nsession)
    except Exception as exc:  # a broken report must not hide the test results
        nsession.report_error = f"{type(exc).__name__}: {exc}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from harness.report.session import print_verdict_table

    print_verdict_table(terminalreporter, config.stash[SESSION_KEY])


@pytest.fixture(scope="session")
def notepipe_session(pytestconfig: pytest.Config) -> NotepipeSession:
    return pytestconfig.stash[SESSION_KEY]


RecordScenario = Callable[["ScenarioRecord"], None]


@pytest.fixture
def record_scenario(request: pytest.FixtureRequest) -> RecordScenario:
    def record(scenario: ScenarioRecord) -> None:
        record_outcome(request.config, scenario, request.node.nodeid)

    return record
