"""Request and response bodies of the API."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

MAX_METADATA_BYTES = 16 * 1024
#: No NUL anywhere: PostgreSQL text cannot hold it (declared in the schema, enforced below).
NO_NUL_PATTERN = "^[^\\u0000]*$"


class NoteIn(BaseModel):
    """A new note. ``max_content_bytes`` is the configured limit
    (``NOTEPIPE_MAX_CONTENT_BYTES``): :func:`note_in_model` builds the API's own class."""

    model_config = ConfigDict(extra="forbid")
    max_content_bytes: ClassVar[int] = 64 * 1024

    content: str = Field(description="UTF-8 text, 1 byte to 64 KiB, no NUL")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="free JSON object, ≤ 16 KiB as JSON, no NUL"
    )

    @field_validator("content")
    @classmethod
    def _content_size(cls, value: str) -> str:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("content must be valid UTF-8 (it contains lone surrogates)") from None
        if size == 0:
            raise ValueError("content must not be empty")
        if size > cls.max_content_bytes:
            raise ValueError(f"content is {size} bytes; the limit is {cls.max_content_bytes} bytes")
        if "\x00" in value:
            raise ValueError("content must not contain NUL characters")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
        if "\\u0000" in json.dumps(value):
            raise ValueError("metadata must not contain NUL characters")
        return value


def note_in_model(max_content_bytes: int) -> type[NoteIn]:
    """:class:`NoteIn` with the configured content limit, enforced and in the OpenAPI
    schema (``minLength`` 1, ``maxLength``: at most that many characters, since the
    limit is in UTF-8 bytes, ``pattern``: no NUL)."""
    model = create_model(
        "NoteIn",
        __base__=NoteIn,
        content=(
            str,
            Field(
                description=f"UTF-8 text, 1 to {max_content_bytes} bytes, no NUL",
                json_schema_extra={
                    "minLength": 1,
                    "maxLength": max_content_bytes,
                    "pattern": NO_NUL_PATTERN,
                },
            ),
        ),
    )
    model.max_content_bytes = max_content_bytes
    return model


class NoteAccepted(BaseModel):
    id: int
    status: str
    job_id: str | None = None
    detail: str | None = None


class NoteEvent(BaseModel):
    from_status: str | None
    to_status: str
    attempt: int
    worker: str | None
    job_id: str | None
    at: datetime
    error: str | None
    cause: str | None = None  # why the attempt ended (events leaving processing)


class NoteOut(BaseModel):
    id: int
    status: str
    terminal: bool
    attempt: int
    content: str
    metadata: dict[str, Any]
    enrichment: dict[str, Any] | None
    last_error: str | None
    worker: str | None
    job_id: str | None
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    events: list[NoteEvent]


class NoteSummary(BaseModel):
    id: int
    status: str
    attempt: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    last_error: str | None


class NoteList(BaseModel):
    notes: list[NoteSummary]
    next_after_id: int | None


class ErrorOut(BaseModel):
    error: str
    details: list[dict[str, Any]] = Field(default_factory=list)
