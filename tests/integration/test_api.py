"""The HTTP API as a real uvicorn process, with real Redis, PostgreSQL and OTLP export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.collector import TraceCollector
from harness.processes import PipelineProcess, start_api, start_worker
from harness.services.ports import free_port
from harness.wait import wait_until
from notepipe.settings import Settings
from notepipe.store import ledger
from notepipe.store.rows import Conn


@pytest.fixture
def api(pipeline_settings: Settings, log_dir: Path) -> Iterator[PipelineProcess]:
    process = start_api(pipeline_settings, log_dir)
    try:
        yield process
    finally:
        process.stop()


def _count_notes(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM notes").fetchone()
    assert row is not None
    return int(row["n"])


def test_post_then_get(api: PipelineProcess, ledger_conn: Conn) -> None:
    response = httpx.post(
        f"{api.url}/notes",
        json={"content": "Bonjour tout le monde, ceci est une note.", "metadata": {"src": "t"}},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued" and body["job_id"] == f"note-{body['id']}-a0"
    note = httpx.get(f"{api.url}/notes/{body['id']}").json()
    assert note["status"] == "queued" and note["metadata"] == {"src": "t"}
    assert [e["to_status"] for e in note["events"]] == ["pending", "queued"]
    listed = httpx.get(f"{api.url}/notes", params={"status": "queued"}).json()
    assert [n["id"] for n in listed["notes"]] == [body["id"]]


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        ({"content": ""}, 422, "content must not be empty"),
        ({"content": "x" * (64 * 1024 + 1)}, 422, "limit is 65536 bytes"),
        ({}, 422, "content"),
        ({"content": 5}, 422, "content"),
        ({"content": "ok", "metadata": []}, 422, "metadata"),
        ({"content": "ok", "extra": 1}, 422, "extra"),
        ({"content": "a\u0000b"}, 422, "NUL"),
    ],
)
def test_invalid_notes_get_a_clear_4xx_and_write_nothing(
    api: PipelineProcess, ledger_conn: Conn, payload: object, status: int, fragment: str
) -> None:
    response = httpx.post(f"{api.url}/notes", json=payload)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert _count_notes(ledger_conn) == 0


def test_malformed_json_and_huge_bodies_are_refused(
    api: PipelineProcess, ledger_conn: Conn
) -> None:
    bad = httpx.post(
        f"{api.url}/notes", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422 and "invalid request" in bad.json()["error"]
    huge = httpx.post(
        f"{api.url}/notes", content=b"x" * 300_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and "limit" in huge.json()["error"]
    assert httpx.get(f"{api.url}/notes/999999").status_code == 404
    assert httpx.get(f"{api.url}/notes/abc").status_code == 422
    assert httpx.get(f"{api.url}/notes", params={"status": "bogus"}).status_code == 422
    assert _count_notes(ledger_conn) == 0


def test_health_ready_stats_openapi(api: PipelineProcess) -> None:
    assert httpx.get(f"{api.url}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{api.url}/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "postgres": "ok"}
    httpx.post(f"{api.url}/notes", json={"content": "count me"})
    stats = httpx.get(f"{api.url}/stats").json()
    assert stats["notes"]["queued"] == 1 and stats["rq"]["queued"] == 1
    assert "/notes" in httpx.get(f"{api.url}/openapi.json").json()["paths"]


def test_redis_down_answers_202_pending_and_nothing_is_lost(
    make_settings: object, log_dir: Path, ledger_conn: Conn
) -> None:
    dead_redis = f"redis://:x@127.0.0.1:{free_port()}/0"
    settings = make_settings(redis_url=dead_redis)  # type: ignore[operator]
    api = start_api(settings, log_dir)
    try:
        response = httpx.post(
            f"{api.url}/notes", json={"content": "kept while Redis is down"}, timeout=30
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"
        ready = httpx.get(f"{api.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"] == "ok"
        assert "x@" not in ready.text, "the Redis password leaked into /readyz"
    finally:
        api.stop()
    note = ledger.get_note(ledger_conn, response.json()["id"])
    assert note is not None and note["status"] == "pending"


@pytest.mark.parametrize("trace_db", [False, True], ids=["default", "trace_db"])
def test_one_trace_spans_api_and_worker(
    make_settings: Any, log_dir: Path, tmp_path: Path, trace_db: bool
) -> None:
    pipeline_settings = make_settings(trace_db=trace_db)
    with TraceCollector(tmp_path / "spans.jsonl") as collector:
        otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        api = start_api(pipeline_settings, log_dir, extra_env=otel)
        worker = start_worker(pipeline_settings, log_dir, extra_env=otel)
        try:
            note_id = httpx.post(
                f"{api.url}/notes", json={"content": "trace me end to end"}
            ).json()["id"]
            wait_until(
                lambda: httpx.get(f"{api.url}/notes/{note_id}").json()["status"] == "completed",
                60,
                describe="the note to complete",
            )
            attempt_spans = collector.wait_for(
                lambda s: s.name == "note.attempt" and s.note_id == note_id,
                30,
                describe="attempt span",
            )
            collector.wait_for(
                lambda s: s.name.startswith("POST") and s.note_id == note_id,
                30,
                describe="API span",
            )
        finally:
            worker.stop()
            api.stop()
        spans = collector.for_note(note_id)
    trace_ids = {s.trace_id for s in spans}
    assert len(trace_ids) == 1, f"expected one trace, got {trace_ids}"
    services = {s.service for s in spans}
    assert {"notepipe-api", "notepipe-worker"} <= services
    names = {s.name for s in spans}
    assert "note.enqueue" in names
    attempt = attempt_spans[0]
    assert attempt.attributes["note.attempt"] == 1
    assert attempt.attributes["note.outcome"] == "completed"
    assert attempt.attributes["rq.job.id"] == f"note-{note_id}-a0"
    children = [s for s in spans if s.parent_span_id == attempt.span_id]
    statements = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
    if trace_db:  # NOTEPIPE_TRACE_DB: the ledger statements, in the API and under the attempt
        assert children, "the attempt span should parent the database client spans"
        assert {s.kind for s in children} == {"CLIENT"}
        assert {s.service for s in statements} == {"notepipe-api", "notepipe-worker"}
    else:  # by default the hot path makes no statement spans
        assert children == [] and statements == []


def test_the_configured_content_limit_is_enforced_and_declared(
    make_settings: object, log_dir: Path, ledger_conn: Conn
) -> None:
    settings = make_settings(max_content_bytes=10)  # type: ignore[operator]
    api = start_api(settings, log_dir)
    try:
        assert httpx.post(f"{api.url}/notes", json={"content": "é" * 5}).status_code == 201
        refused = httpx.post(f"{api.url}/notes", json={"content": "é" * 6})
        assert refused.status_code == 422
        assert "content is 12 bytes; the limit is 10 bytes" in refused.json()["error"]
        schema = httpx.get(f"{api.url}/openapi.json").json()["components"]["schemas"]["NoteIn"]
        content = schema["properties"]["content"]
        assert (content["minLength"], content["maxLength"]) == (1, 10)
        assert content["pattern"] == "^[^\\u0000]*$"
    finally:
        api.stop()
    assert _count_notes(ledger_conn) == 1


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/notes", "GET, POST"),
        ("PUT", "/notes/1", "GET"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_405_names_the_allowed_methods(
    api: PipelineProcess, method: str, path: str, allow: str
) -> None:
    response = httpx.request(method, f"{api.url}{path}")
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"error": "Method Not Allowed"}
