"""``/notes``: create a note (commit first, then enqueue), read one, list them.

No ``from __future__ import annotations`` here: the request model is built per app
(:func:`~notepipe.api.schemas.note_in_model`, the configured size limit), and FastAPI
reads the route's annotations as objects.
"""

import logging
from typing import Annotated, cast

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from opentelemetry import trace

from notepipe.api.backends import Backends
from notepipe.api.schemas import (
    ErrorOut,
    NoteAccepted,
    NoteIn,
    NoteList,
    NoteOut,
    NoteSummary,
    note_in_model,
)
from notepipe.contracts import spans
from notepipe.errors import EnqueueFailed
from notepipe.models import NoteStatus
from notepipe.store import ledger
from notepipe.telemetry import current_trace_context

log = logging.getLogger(__name__)


def notes_router(backends: Backends) -> APIRouter:
    router = APIRouter()
    note_in = note_in_model(backends.settings.max_content_bytes)

    @router.post(
        "/notes",
        status_code=201,
        response_model=NoteAccepted,
        responses={
            202: {"model": NoteAccepted, "description": "stored; Redis unreachable"},
            413: {"model": ErrorOut, "description": "the request body is too large"},
        },
    )
    def create_note(body: note_in) -> JSONResponse:  # type: ignore[valid-type]
        note = cast(NoteIn, body)
        with backends.db() as conn:
            row = ledger.create_note(conn, note.content, note.metadata, current_trace_context())
        note_id = int(row["id"])
        trace.get_current_span().set_attribute(spans.NOTE_ID, note_id)
        try:
            job_id = backends.note_queue.enqueue_note(note_id, trace_context=row["trace_context"])
        except EnqueueFailed as exc:
            log.warning("%s", exc)
            accepted = NoteAccepted(
                id=note_id,
                status=NoteStatus.PENDING,
                detail="stored; the queue is unreachable, the reconciler will enqueue it",
            )
            return JSONResponse(status_code=202, content=accepted.model_dump())
        try:
            with backends.db() as conn:
                ledger.mark_queued(conn, note_id, job_id)
        except HTTPException:
            log.warning("note %s enqueued but not marked queued: the reconciler will", note_id)
        accepted = NoteAccepted(id=note_id, status=NoteStatus.QUEUED, job_id=job_id)
        return JSONResponse(status_code=201, content=accepted.model_dump())

    @router.get("/notes/{note_id}", response_model=NoteOut, responses={404: {"model": ErrorOut}})
    def get_note(note_id: int) -> NoteOut:
        with backends.db() as conn:
            row = ledger.get_note(conn, note_id)
            if row is None:
                raise HTTPException(404, f"note {note_id} does not exist")
            events = ledger.get_events(conn, note_id)
        status = NoteStatus(row["status"])
        return NoteOut.model_validate({**row, "terminal": status.terminal, "events": events})

    @router.get("/notes", response_model=NoteList)
    def list_notes(
        status: NoteStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after_id: Annotated[int, Query(ge=0)] = 0,
    ) -> NoteList:
        with backends.db() as conn:
            rows = ledger.list_notes(conn, status=status, limit=limit, after_id=after_id)
        notes = [NoteSummary.model_validate(r) for r in rows]
        return NoteList(notes=notes, next_after_id=notes[-1].id if len(notes) == limit else None)

    return router
