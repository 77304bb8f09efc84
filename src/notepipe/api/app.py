"""The FastAPI application: ``create_app(settings)``.

``POST /notes`` commits the note first, then enqueues: when Redis is down the
note is answered ``202 pending`` and the reconciler enqueues it later. Routes:
:mod:`~notepipe.api.notes` and :mod:`~notepipe.api.ops`; errors:
:mod:`~notepipe.api.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from notepipe import __version__
from notepipe.api.backends import Backends
from notepipe.api.errors import install_error_handlers
from notepipe.api.notes import notes_router
from notepipe.api.ops import ops_router
from notepipe.api.schemas import MAX_METADATA_BYTES, ErrorOut
from notepipe.queue.connection import redis_connection
from notepipe.queue.enqueue import RQNoteQueue
from notepipe.settings import Settings
from notepipe.store.db import make_pool

#: The smallest body limit; above it, room for the content limit written as escaped JSON.
MIN_BODY_BYTES = 256 * 1024


def max_body_bytes(settings: Settings) -> int:
    return max(MIN_BODY_BYTES, 4 * settings.max_content_bytes + MAX_METADATA_BYTES)


def create_app(settings: Settings) -> FastAPI:
    redis = redis_connection(settings)
    backends = Backends(
        settings, make_pool(settings, name="notepipe-api"), redis, RQNoteQueue(settings, redis)
    )
    body_limit = max_body_bytes(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        backends.pool.open(wait=False)
        try:
            yield
        finally:
            backends.pool.close()
            redis.close()

    app = FastAPI(
        title="notepipe",
        version=__version__,
        summary="Accepts notes, stores them in PostgreSQL and enriches them on RQ workers.",
        lifespan=lifespan,
        responses={
            400: {"model": ErrorOut, "description": "the body could not be read (not UTF-8)"},
            422: {"model": ErrorOut},
            503: {"model": ErrorOut},
        },
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > body_limit:
            return JSONResponse(
                status_code=413,
                content={"error": f"request body is {length} bytes; the limit is {body_limit}"},
            )
        return await call_next(request)

    app.include_router(notes_router(backends))
    app.include_router(ops_router(backends))
    return app
