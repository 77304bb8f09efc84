"""A small client for Jaeger's HTTP query API (the JSON the Jaeger UI reads)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from harness.errors import HarnessError
from harness.wait import wait_until


class JaegerQueryError(HarnessError):
    """Jaeger's query API answered with an error."""


@dataclass(frozen=True)
class SpanCount:
    """Spans Jaeger returned for a set of trace ids."""

    traces_asked: int
    traces_found: int
    spans: int
    missing_traces: tuple[str, ...]


class JaegerQuery:
    """``GET /api/services``, ``/api/traces/{id}`` and trace search on ``base_url``."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JaegerQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def services(self) -> list[str]:
        return sorted(self._get("/api/services").get("data") or [])

    def trace_document(self, trace_id: str) -> dict[str, Any] | None:
        """The whole answer to ``/api/traces/{id}`` (``{"data": [trace], ...}``); ``None``
        when Jaeger does not know the trace."""
        response = self._client.get(f"/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        return self._json(response)

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace (``traceID``, ``spans``, ``processes``, ``warnings``) or ``None``."""
        document = self.trace_document(trace_id)
        data = (document or {}).get("data") or []
        return dict(data[0]) if data else None

    def wait_for_trace(self, trace_id: str, *, spans: int, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until Jaeger returns ``trace_id`` with at least ``spans`` spans."""

        def found() -> dict[str, Any] | None:
            trace = self.trace(trace_id)
            return trace if trace is not None and len(trace["spans"]) >= spans else None

        return wait_until(
            found,
            timeout,
            describe=f"Jaeger at {self.base_url} to return trace {trace_id} with {spans} span(s)",
            transient=(httpx.TransportError,),
        )

    def count_spans(self, trace_ids: Iterable[str]) -> SpanCount:
        """Ask for every trace in ``trace_ids``; count what Jaeger returns."""
        asked = sorted(set(trace_ids))
        found, spans, missing = 0, 0, []
        for trace_id in asked:
            trace = self.trace(trace_id)
            if trace is None:
                missing.append(trace_id)
                continue
            found += 1
            spans += len({span["spanID"] for span in trace["spans"]})
        return SpanCount(len(asked), found, spans, tuple(missing))

    def _get(self, path: str) -> dict[str, Any]:
        return self._json(self._client.get(path))

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise JaegerQueryError(
                f"Jaeger {response.request.method} {response.request.url} answered "
                f"{response.status_code}: {response.text[:300]}"
            )
        document: dict[str, Any] = response.json()
        return document
