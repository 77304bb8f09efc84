"""The FastAPI application: ``create_app(settings)``.

``POST /notes`` commits the note first, then enqueues: when Redis is down the
note is answered ``202 pending`` and the reconciler enqueues it later.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from psycopg_pool import PoolTimeout
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from notepipe import __version__
from notepipe.api.schemas import ErrorOut, NoteAccepted, NoteIn, NoteList, NoteOut, NoteSummary
from notepipe.errors import EnqueueFailed
from notepipe.models import NoteStatus
from notepipe.queue.connection import redis_connection
from notepipe.queue.enqueue import RQNoteQueue
from notepipe.redact import redact_text
from notepipe.settings import Settings
from notepipe.stats import ledger_stats, rq_stats
from notepipe.store import ledger
from notepipe.store.db import make_pool
from notepipe.store.rows import Conn
from notepipe.telemetry import current_trace_context

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
DB_UNAVAILABLE = "the ledger database is unavailable; nothing was written, retry later"


def create_app(settings: Settings) -> FastAPI:
    pool = make_pool(settings, name="notepipe-api")
    redis = redis_connection(settings)
    note_queue = RQNoteQueue(settings, redis)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.open(wait=False)
        try:
            yield
        finally:
            pool.close()
            redis.close()

    app = FastAPI(
        title="notepipe",
        version=__version__,
        summary="Accepts notes, stores them in PostgreSQL and enriches them on RQ workers.",
        lifespan=lifespan,
        responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    )

    @contextmanager
    def db() -> Iterator[Conn]:
        try:
            with pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("database unavailable: %s", redact_text(str(exc)))
            raise HTTPException(503, DB_UNAVAILABLE) from exc

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
        return JSONResponse(
            status_code=422,
            content={"error": f"invalid request: {summary}", "details": details},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)})

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(
                status_code=413,
                content={"error": f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}"},
            )
        return await call_next(request)

    @app.post(
        "/notes",
        status_code=201,
        response_model=NoteAccepted,
        responses={202: {"model": NoteAccepted, "description": "stored; Redis unreachable"}},
    )
    def create_note(body: NoteIn) -> JSONResponse:
        with db() as conn:
            row = ledger.create_note(conn, body.content, body.metadata, current_trace_context())
        note_id = int(row["id"])
        trace.get_current_span().set_attribute("note.id", note_id)
        try:
            job_id = note_queue.enqueue_note(note_id, trace_context=row["trace_context"])
        except EnqueueFailed as exc:
            log.warning("%s", exc)
            accepted = NoteAccepted(
                id=note_id,
                status=NoteStatus.PENDING,
                detail="stored; the queue is unreachable, the reconciler will enqueue it",
            )
            return JSONResponse(status_code=202, content=accepted.model_dump())
        try:
            with db() as conn:
                ledger.mark_queued(conn, note_id, job_id)
        except HTTPException:
            log.warning("note %s enqueued but not marked queued: the reconciler will", note_id)
        accepted = NoteAccepted(id=note_id, status=NoteStatus.QUEUED, job_id=job_id)
        return JSONResponse(status_code=201, content=accepted.model_dump())

    @app.get("/notes/{note_id}", response_model=NoteOut, responses={404: {"model": ErrorOut}})
    def get_note(note_id: int) -> NoteOut:
        with db() as conn:
            row = ledger.get_note(conn, note_id)
            if row is None:
                raise HTTPException(404, f"note {note_id} does not exist")
            events = ledger.get_events(conn, note_id)
        status = NoteStatus(row["status"])
        return NoteOut.model_validate({**row, "terminal": status.terminal, "events": events})

    @app.get("/notes", response_model=NoteList)
    def list_notes(
        status: NoteStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after_id: Annotated[int, Query(ge=0)] = 0,
    ) -> NoteList:
        with db() as conn:
            rows = ledger.list_notes(conn, status=status, limit=limit, after_id=after_id)
        notes = [NoteSummary.model_validate(r) for r in rows]
        return NoteList(notes=notes, next_after_id=notes[-1].id if len(notes) == limit else None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            redis.ping()
            checks["redis"] = "ok"
        except RedisError as exc:
            checks["redis"] = f"unavailable: {redact_text(str(exc))}"
        try:
            with pool.connection(timeout=3) as conn:
                conn.execute("SELECT 1")
            checks["postgres"] = "ok"
        except (psycopg.Error, PoolTimeout) as exc:
            checks["postgres"] = f"unavailable: {redact_text(str(exc))}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not ready", "checks": checks},
        )

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        with db() as conn:
            counts = ledger_stats(conn)
        try:
            rq = rq_stats(redis, settings.queue_name)
        except RedisError as exc:
            rq = {"error": f"redis unavailable: {redact_text(str(exc))}"}
        return {"notes": counts, "rq": rq}

    return app
