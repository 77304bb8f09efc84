"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (Redis and
PostgreSQL answer), ``/stats`` (ledger and raw RQ counts)."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError

from notepipe import __version__
from notepipe.api.backends import Backends
from notepipe.redact import redact_text
from notepipe.stats import ledger_stats, rq_stats


def ops_router(backends: Backends) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            backends.redis.ping()
            checks["redis"] = "ok"
        except RedisError as exc:
            checks["redis"] = f"unavailable: {redact_text(str(exc))}"
        try:
            with backends.pool.connection(timeout=3) as conn:
                conn.execute("SELECT 1")
            checks["postgres"] = "ok"
        except (psycopg.Error, PoolTimeout) as exc:
            checks["postgres"] = f"unavailable: {redact_text(str(exc))}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not ready", "checks": checks},
        )

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        with backends.db() as conn:
            counts = ledger_stats(conn)
        try:
            rq = rq_stats(backends.redis, backends.settings.queue_name)
        except RedisError as exc:
            rq = {"error": f"redis unavailable: {redact_text(str(exc))}"}
        return {"notes": counts, "rq": rq}

    return router
