"""A pipeline under test: API, workers and reconciler on Redis and PostgreSQL, with the
pipeline's traffic going through Toxiproxy proxies and its spans to the run's collector.

The harness's own reads (quiescence, the checker's history) go to the services directly,
through the stack's :class:`~harness.observe.StackObserver`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from harness.chaos_stage import CHAOS_STAGE
from harness.collector import TraceCollector
from harness.errors import HarnessConfigError
from harness.observe import StackObserver
from harness.processes import (
    PipelineProcess,
    start_api,
    start_reconciler,
    start_worker,
    wait_worker_registered,
)
from harness.services.base import Service
from harness.services.databases import drop_database
from harness.wait import WaitTimeout, wait_until
from notepipe.settings import DEFAULT_STAGES, Settings, load_settings
from notepipe.store.migrate import migrate

#: Scenario settings: short, so recovery takes seconds and never RQ's 600 s paths. The job
#: timeout leaves room for healthy long notes (:data:`harness.chaos_stage.LONG_NOTE`, three
#: lease periods) that only complete if the heartbeat keeps their lease; retries wait 2 s,
#: long enough that a retry claimed early stands out against the ledger's one clock.
SCENARIO_SETTINGS: dict[str, Any] = {
    "job_timeout": 8.0,
    "lease_ttl": 2.0,
    "heartbeat_interval": 0.5,
    "lease_grace": 0.5,
    "enqueue_grace": 1.0,
    "reconcile_interval": 0.5,
    "retry_max": 2,
    "retry_intervals": (2.0,),
    "dispatch_slack": 5.0,
    "worker_ttl": 10,
    "stages": (*DEFAULT_STAGES, CHAOS_STAGE),
}


class NetworkPath(Protocol):
    """A proxy in front of one service (the harness speaks only the Toxiproxy API)."""

    @property
    def listen_port(self) -> int: ...

    def disable(self) -> None: ...

    def enable(self) -> None: ...

    def add_toxic(
        self, *, name: str, type: str, stream: str, toxicity: float, attributes: Mapping[str, Any]
    ) -> None: ...

    def remove_toxic(self, name: str) -> None: ...


@dataclass(frozen=True)
class StackOptions:
    """``settings`` override ``defaults`` (the scenario settings unless given), which
    override the ``NOTEPIPE_*`` environment; ``env`` is added to the pipeline processes'
    environment (e.g. ``OTEL_EXPORTER_OTLP_ENDPOINT`` for a stack without a collector).
    ``fresh_database``: a database of its own in the PostgreSQL service (dropped at stop),
    else the service's own database (a service dedicated to this stack)."""

    workers: int = 3
    settings: Mapping[str, Any] = field(default_factory=dict)
    api: bool = True
    reconciler: bool = True
    redis_db: int = 0
    defaults: Mapping[str, Any] = field(default_factory=lambda: SCENARIO_SETTINGS)
    api_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    fresh_database: bool = True


def _with_path(url: str, *, port: int | None = None, path: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if port is not None:
        netloc = f"{netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit(parts._replace(netloc=netloc, path=path if path is not None else parts.path))


class PipelineStack:
    def __init__(
        self,
        *,
        redis_service: Service,
        postgres_service: Service,
        collector: TraceCollector | None,
        workdir: Path,
        options: StackOptions,
        proxies: Mapping[str, NetworkPath] | None = None,
        pooler: Service | None = None,
    ) -> None:
        """``pooler``: a connection pooler in front of ``postgres_service`` (PgBouncer) that
        the pipeline's processes connect through; migrations and observers go direct."""
        self.redis_service = redis_service
        self.postgres_service = postgres_service
        self.collector = collector
        self.workdir = workdir
        self.options = options
        self.proxies = dict(proxies or {})
        self.pooler = pooler
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.database = (
            f"np_{secrets.token_hex(5)}"
            if options.fresh_database
            else urlsplit(postgres_service.url).path.lstrip("/")
        )
        self.start_seconds = 0.0
        self.workers: list[PipelineProcess] = []
        self.retired: list[PipelineProcess] = []
        self.api: PipelineProcess | None = None
        self.reconciler: PipelineProcess | None = None
        self._next_worker = 0
        self.settings: Settings | None = None
        #: The services' own addresses (no proxy, no pooler): what the harness reads with.
        self.direct_settings: Settings | None = None
        #: Reads the ledger, Redis and this stack's spans (built by :meth:`start`).
        self._observer: StackObserver | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        began = time.monotonic()
        db_path = f"/{self.database}"
        direct_pg = _with_path(self.postgres_service.url, path=db_path)
        direct_redis = _with_path(self.redis_service.url, path=f"/{self.options.redis_db}")
        pipeline_pg, pipeline_redis = direct_pg, direct_redis
        if self.pooler is not None:
            pipeline_pg = _with_path(direct_pg, port=self.pooler.port)
        if "postgres" in self.proxies:
            pipeline_pg = _with_path(direct_pg, port=self.proxies["postgres"].listen_port)
        if "redis" in self.proxies:
            pipeline_redis = _with_path(direct_redis, port=self.proxies["redis"].listen_port)
        values = {**self.options.defaults, **self.options.settings}
        self.settings = load_settings(**values, redis_url=pipeline_redis, database_url=pipeline_pg)
        self.direct_settings = load_settings(
            **values, redis_url=direct_redis, database_url=direct_pg
        )
        self._observer = StackObserver(self.direct_settings, self.collector, self.stack_id)
        if self.options.fresh_database:
            with psycopg.connect(self.postgres_service.url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        with psycopg.connect(direct_pg, autocommit=True) as conn:
            migrate(conn)  # type: ignore[arg-type]
        client = redis.Redis.from_url(direct_redis)
        try:
            client.flushdb()
        finally:
            client.close()
        otel = self.otel_env()
        # The workers boot (imports, the stages' models) while the API starts.
        for _ in range(self.options.workers):
            self.add_worker()
        if self.options.api:
            self.api = start_api(
                self.settings, self.log_dir, port=self.options.api_port, extra_env=otel
            )
        for worker in self.workers:
            wait_worker_registered(self.direct_settings.redis_dsn, worker)
        if self.options.reconciler:
            self.reconciler = start_reconciler(self.settings, self.log_dir, extra_env=otel)
        self.start_seconds = time.monotonic() - began

    def otel_env(self) -> dict[str, str]:
        """The pipeline processes' extra environment: export to the collector, if any."""
        if self.collector is None:
            return dict(self.options.env)
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_RESOURCE_ATTRIBUTES": f"notepipe.stack={self.stack_id}",
            **self.options.env,
        }

    @property
    def stack_id(self) -> str:
        """Tags this stack's spans (the collector is shared by the session)."""
        return self.database

    @property
    def observer(self) -> StackObserver:
        """The harness's own reads of this stack: quiescence and the checker's history."""
        assert self._observer is not None, "start() the stack first"
        return self._observer

    def stop(self) -> None:
        for process in [*self.workers, *self.retired]:
            with contextlib.suppress(Exception):
                process.kill()
        for service_process in (self.api, self.reconciler):
            if service_process is not None:
                with contextlib.suppress(Exception):
                    service_process.stop(grace=5)
        if not self.options.fresh_database:
            return
        with contextlib.suppress(psycopg.Error, WaitTimeout):
            drop_database(self.postgres_service.url, self.database)

    # ---------------------------------------------------------------- workers
    def add_worker(self) -> PipelineProcess:
        assert self.settings is not None
        worker = start_worker(
            self.settings, self.log_dir, index=self._next_worker, extra_env=self.otel_env()
        )
        self._next_worker += 1
        self.workers.append(worker)
        return worker

    def processes(self) -> list[PipelineProcess]:
        """The live pipeline processes: API, workers, reconciler."""
        return [p for p in (self.api, *self.workers, self.reconciler) if p is not None]

    def restart(self, process: PipelineProcess) -> PipelineProcess:
        """Start ``process`` again under the same name (and, for the API, the same port),
        as a process manager would after a crash; the dead one is retired."""
        assert self.settings is not None, "start() the stack first"
        otel = self.otel_env()
        if process.role == "worker":
            index = int(process.name.rsplit("-", 1)[1])
            new = start_worker(self.settings, self.log_dir, index=index, extra_env=otel)
            self.workers[self.workers.index(process)] = new
            self.retired.append(process)
        elif process.role == "api":
            port = int(str(process.url).rsplit(":", 1)[1])
            new = self.api = start_api(self.settings, self.log_dir, port=port, extra_env=otel)
        else:
            new = self.reconciler = start_reconciler(self.settings, self.log_dir, extra_env=otel)
        return new

    def worker_pids(self) -> dict[str, int]:
        """``worker-N`` → its pid (what its RQ name ends with), for every worker this stack
        ever started."""
        return {w.name: w.pid for w in [*self.workers, *self.retired]}

    def warm_stop_grace(self) -> float:
        """How long a worker's warm shutdown may take: the job it is running may use its
        whole timeout, then RQ's teardown and the span relay's last export follow."""
        return self.settings.job_timeout + 15 if self.settings else 30

    def remove_worker(self, worker: PipelineProcess) -> None:
        """Stop ``worker`` with a warm shutdown (SIGKILL, after a stack dump, only if it
        outlives :meth:`warm_stop_grace`) and retire it."""
        worker.stop(grace=self.warm_stop_grace())
        self.workers.remove(worker)
        self.retired.append(worker)

    def replace_worker(
        self, victim: PipelineProcess, *, wait_exit: bool = False
    ) -> PipelineProcess:
        """Retire ``victim`` (waiting for its warm shutdown if asked; one that outlives
        :meth:`warm_stop_grace` first writes its threads' stacks to its log) and start a
        new worker."""
        if wait_exit:
            grace = self.warm_stop_grace()
            with contextlib.suppress(subprocess.TimeoutExpired):
                victim.wait_exit(timeout=grace)
            if victim.alive():
                victim.dump_stacks(f"warm shutdown still running after {grace:g} s")
        if victim.alive():
            victim.kill()
        if victim in self.workers:
            self.workers.remove(victim)
            self.retired.append(victim)
        return self.add_worker()

    def wait_a_moment_for_shutdown_start(self, victim: PipelineProcess, timeout: float) -> bool:
        """Between two SIGTERMs RQ must have entered its warm shutdown; poll its log.
        Returns whether it did (or the worker is gone).

        Polled every 20-50 ms, not with a backoff to 0.5 s: the job the second SIGTERM
        must interrupt has well under a second left (a forced shutdown that arrived after
        it finished hit nothing, and the run was ``unknown``)."""
        try:
            wait_until(
                # RQ logs "warm shut down requested".
                lambda: "shut down" in victim.logs(10).lower() or not victim.alive(),
                timeout,
                describe=f"{victim.name} to start its warm shutdown",
                interval=0.02,
                max_interval=0.05,
            )
        except WaitTimeout:
            return False
        return True

    def signal_pid(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    # ---------------------------------------------------------------- fault targets
    def service(self, name: str) -> Service:
        if name == "redis":
            return self.redis_service
        if name == "postgres":
            return self.postgres_service
        raise HarnessConfigError(f"unknown service {name!r}: use 'redis' or 'postgres'")

    def proxy(self, name: str) -> NetworkPath:
        try:
            return self.proxies[name]
        except KeyError:
            raise HarnessConfigError(
                f"no proxy in front of {name!r}: this stack was started without network proxies"
            ) from None
