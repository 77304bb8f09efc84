"""A pipeline under test: API, workers and reconciler on Redis and PostgreSQL, with the
pipeline's traffic going through Toxiproxy proxies and its spans to the run's collector.

The harness's own observers (checker, quiescence) connect to the services directly.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

from harness.chaos_stage import CHAOS_STAGE
from harness.checker import History, read_ledger, read_rq_snapshot
from harness.collector import TraceCollector
from harness.errors import HarnessConfigError
from harness.processes import (
    PipelineProcess,
    start_api,
    start_reconciler,
    start_worker,
    wait_worker_registered,
)
from harness.services.base import Service
from harness.wait import WaitTimeout, wait_until
from notepipe.contracts import rq as rq_contract
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
        self._collector_baseline = (
            (collector.stats.rejected_requests, collector.stats.rejected_spans)
            if collector is not None
            else (0, 0)
        )

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

    def spans(self) -> list[Any]:
        """The collector's spans that belong to this stack (its processes and its faults)."""
        if self.collector is None:
            return []
        return [
            s
            for s in self.collector.spans()
            if s.resource.get("notepipe.stack") == self.stack_id
            or s.attributes.get("notepipe.stack") == self.stack_id
        ]

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
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.postgres_service.url, autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )

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

    def worker_names(self) -> dict[str, str]:
        """``worker-N`` → its RQ worker name, for every worker this stack ever started."""
        return {w.name: w.rq_worker_name for w in [*self.workers, *self.retired]}

    def remove_worker(self, worker: PipelineProcess) -> None:
        worker.stop()
        self.workers.remove(worker)
        self.retired.append(worker)

    def replace_worker(
        self, victim: PipelineProcess, *, wait_exit: bool = False
    ) -> PipelineProcess:
        """Retire ``victim`` (waiting for its warm shutdown if asked) and start a new worker."""
        if wait_exit:
            with contextlib.suppress(Exception):
                victim.wait_exit(timeout=self.settings.job_timeout + 15 if self.settings else 30)
        if victim.alive():
            victim.kill()
        if victim in self.workers:
            self.workers.remove(victim)
            self.retired.append(victim)
        return self.add_worker()

    def wait_a_moment_for_shutdown_start(self, victim: PipelineProcess) -> None:
        """Between two SIGTERMs RQ must have entered its warm shutdown; poll its log.

        Polled every 20-50 ms, not with a backoff to 0.5 s: the job the second SIGTERM
        must interrupt has well under a second left (a forced shutdown that arrived after
        it finished hit nothing, and the run was ``unknown``)."""
        with contextlib.suppress(WaitTimeout):
            wait_until(
                # RQ logs "warm shut down requested".
                lambda: "shut down" in victim.logs(10).lower() or not victim.alive(),
                3,
                describe=f"{victim.name} to start its warm shutdown",
                interval=0.02,
                max_interval=0.05,
            )

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

    # ---------------------------------------------------------------- observation
    def _direct_settings(self) -> Settings:
        assert self.direct_settings is not None, "start() the stack first"
        return self.direct_settings

    def pending_work(self) -> dict[str, int]:
        """Non-terminal notes in the ledger and jobs left in Redis (read directly, raw)."""
        observer = self._direct_settings()
        with psycopg.connect(observer.database_dsn, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM notes WHERE status NOT IN ('completed', 'failed')"
            ).fetchone()
        client = redis.Redis.from_url(observer.redis_dsn, socket_timeout=5)
        q = observer.queue_name
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(rq_contract.queue_key(q))
                pipe.llen(rq_contract.intermediate_key(q))
                pipe.zcard(rq_contract.registry_key("started", q))
                pipe.zcard(rq_contract.registry_key("scheduled", q))
                queued, intermediate, started, scheduled = pipe.execute()
        finally:
            client.close()
        return {
            "active_notes": int(row[0]) if row else 0,
            "queued": int(queued),
            "intermediate": int(intermediate),
            "started": int(started),
            "scheduled": int(scheduled),
        }

    def wait_quiescent(self, timeout: float) -> dict[str, int]:
        """Until every note is terminal and Redis holds no queued/started/scheduled job."""
        last: dict[str, int] = {}

        def quiet() -> bool:
            nonlocal last
            last = self.pending_work()
            return not any(last.values())

        try:
            wait_until(
                quiet,
                timeout,
                describe="quiescence",
                interval=0.2,
                transient=(psycopg.OperationalError, redis.RedisError),
            )
        except WaitTimeout:
            return last
        return {}

    def history(self, *, accepted: Mapping[int, datetime], faults: tuple[Any, ...] = ()) -> History:
        observer = self._direct_settings()
        errors: dict[str, str] = {}
        notes: tuple[Any, ...] = ()
        events: tuple[Any, ...] = ()
        rq = None
        try:
            with psycopg.connect(observer.database_dsn, connect_timeout=10) as conn:
                notes, events = read_ledger(conn)
        except psycopg.Error as exc:
            errors["ledger"] = str(exc)
        client = redis.Redis.from_url(observer.redis_dsn, socket_timeout=10)
        try:
            rq = read_rq_snapshot(client, observer.queue_name)
        except redis.RedisError as exc:
            errors["rq"] = str(exc)
        finally:
            client.close()
        spans: tuple[Any, ...] = ()
        try:
            spans = tuple(self.spans())
        except Exception as exc:  # the span store is unreadable: the witness is missing
            errors["spans"] = f"the collector's spans could not be read: {exc!r}"
        problem = self._collector_problem()
        if problem is not None:
            errors.setdefault("spans", problem)
        return History(
            notes=notes,
            events=events,
            observed_at=datetime.now(UTC),
            spans=spans,
            rq=rq,
            faults=faults,
            accepted=dict(accepted),
            input_errors=errors,
        )

    def _collector_problem(self) -> str | None:
        """Why the trace witness cannot be trusted for this stack, if it cannot."""
        if self.collector is None:
            return "this stack has no trace collector"
        if not self.collector.receiver.running:
            return "the trace collector is not running: no span could be received"
        stats = self.collector.stats
        rejected = (
            stats.rejected_requests - self._collector_baseline[0],
            stats.rejected_spans - self._collector_baseline[1],
        )
        if any(rejected):
            return (
                f"the trace collector rejected {rejected[0]} export request(s) and "
                f"{rejected[1]} span(s) during this run: the witness is incomplete"
            )
        return None

    def settled_history(
        self,
        *,
        accepted: Mapping[int, datetime],
        faults: tuple[Any, ...] = (),
        timeout: float = 10.0,
    ) -> History:
        """:meth:`history` once every attempt that ended by itself has its attempt span
        (re-read every 0.3 s, up to ``timeout``; the checker reports what is still missing).

        Waiting on the witness itself, not on the span count going quiet: the reconciler's
        pass spans keep that count growing for ever."""
        from harness.checker.span_gaps import unwitnessed_attempts
        from harness.checker.timeline import build_timelines

        latest: list[History] = []

        def witnessed() -> bool:
            latest[:] = [self.history(accepted=accepted, faults=faults)]
            history = latest[0]
            if "ledger" in history.input_errors:
                return True
            return not unwitnessed_attempts(build_timelines(history).values(), faults)

        self.collector_settle(1.0)
        with contextlib.suppress(WaitTimeout):
            wait_until(
                witnessed,
                timeout,
                describe="every ended attempt's span",
                interval=0.3,
                max_interval=0.5,
            )
        return latest[0]

    def collector_settle(self, seconds: float) -> None:
        """Give exporters a few batch periods (200 ms each, plus the horse relay's linger) to
        deliver the spans they still hold, e.g. a resumed zombie's fenced attempt."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: time.monotonic() >= deadline, seconds + 1, describe="one export batch"
            )
