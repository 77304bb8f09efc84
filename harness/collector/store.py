"""Thread-safe in-memory span storage, mirrored to a per-run JSONL file."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from harness.spans import ATTR_NOTE_ID, SpanRecord
from harness.wait import wait_until

SpanPredicate = Callable[[SpanRecord], bool]


class SpanStore:
    """Every span received in a run; queries return snapshots sorted by start time.

    With ``path`` each batch is appended to that JSONL file (one span per line),
    which :func:`load_jsonl` reads back for re-analysis.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._spans: list[SpanRecord] = []
        self._by_trace: dict[str, list[SpanRecord]] = {}
        self._file: IO[str] | None = None

    def add(self, spans: Sequence[SpanRecord]) -> None:
        """Store a batch (and append it to the JSONL file)."""
        if not spans:
            return
        with self._lock:
            self._spans.extend(spans)
            for span in spans:
                self._by_trace.setdefault(span.trace_id, []).append(span)
            if self.path is not None:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.writelines(span_to_json(span) + "\n" for span in spans)
                self._file.flush()

    def __len__(self) -> int:
        with self._lock:
            return len(self._spans)

    def spans(self) -> list[SpanRecord]:
        """All spans, sorted by start time."""
        with self._lock:
            return _sorted(self._spans)

    def by_trace(self, trace_id: str) -> list[SpanRecord]:
        """The spans of one trace (``trace_id`` in hex, any case)."""
        with self._lock:
            return _sorted(self._by_trace.get(trace_id.lower(), []))

    def for_note(self, note_id: int) -> list[SpanRecord]:
        """Spans whose ``note.id`` is ``note_id``, plus every span of their traces."""
        with self._lock:
            traces = {s.trace_id for s in self._spans if _is_note(s, note_id)}
            return _sorted(s for t in traces for s in self._by_trace[t])

    def wait_for(
        self,
        predicate: SpanPredicate,
        timeout: float,
        *,
        count: int = 1,
        describe: str = "",
    ) -> list[SpanRecord]:
        """Poll until at least ``count`` spans match ``predicate``; return the matches.

        Raises :class:`harness.wait.WaitTimeout` at the deadline.
        """

        def matches() -> list[SpanRecord] | None:
            found = [s for s in self.spans() if predicate(s)]
            return found if len(found) >= count else None

        return wait_until(
            matches,
            timeout,
            describe=describe or f"{count} matching span(s) at the trace collector",
        )

    def clear(self) -> None:
        """Forget every stored span (the JSONL file is kept as written)."""
        with self._lock:
            self._spans.clear()
            self._by_trace.clear()

    def close(self) -> None:
        """Close the JSONL file; a later :meth:`add` reopens it in append mode."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def span_to_json(span: SpanRecord) -> str:
    """One JSONL line; ``bytes`` attribute values become ``{"bytes_b64": ...}``."""
    return json.dumps(dataclasses.asdict(span), default=_json_default, separators=(",", ":"))


def span_from_json(line: str) -> SpanRecord:
    """The inverse of :func:`span_to_json`."""
    data: dict[str, Any] = json.loads(line, object_hook=_json_object_hook)
    data["events"] = tuple(data.get("events", ()))
    return SpanRecord(**data)


def load_jsonl(path: Path) -> list[SpanRecord]:
    """The spans of a run's JSONL file."""
    with path.open(encoding="utf-8") as lines:
        return [span_from_json(line) for line in lines if line.strip()]


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):
        return {"bytes_b64": base64.b64encode(value).decode()}
    return repr(value)


def _json_object_hook(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"bytes_b64"}:
        return base64.b64decode(obj["bytes_b64"])
    return obj


def _is_note(span: SpanRecord, note_id: int) -> bool:
    value = span.attributes.get(ATTR_NOTE_ID)
    if value is None:
        return False
    try:
        return int(value) == note_id
    except (TypeError, ValueError):
        return False


def _sorted(spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    return sorted(spans, key=lambda s: (s.start_ns, s.span_id))
