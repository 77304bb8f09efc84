"""``jaeger.json`` against Jaeger's own answer for the same trace, field by field.

:func:`compare_traces` walks a trace of the harness's file and the trace Jaeger's
query API (``GET /api/traces/{id}``) returns for the same OTLP spans, and lists
every difference except the documented ones in :data:`ALLOWED_DIFFERENCES`.
Everything else (ids, names, references, times, tags with their types and
values, logs, processes, warnings) must be equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: What may differ between the file and Jaeger's answer, and why.
ALLOWED_DIFFERENCES: dict[str, str] = {
    "span order": "Jaeger returns a trace's spans in storage order, the file by start time; "
    "spans are matched by spanID",
    "process keys": "`p1`, `p2`, … are labels local to one document; each span's process is "
    "compared by what its key points to (serviceName and tags)",
    "number spelling": "JSON numbers compare by value: Go writes 1e20 as "
    "100000000000000000000 and 3.0 as 3, Python as 1e+20 and 3.0",
    "envelope total": "the file's `total` counts its traces; Jaeger's /api/traces/{id} answers "
    "0 (the UI reads only `data`)",
}


def compare_documents(file_doc: Mapping[str, Any], api_doc: Mapping[str, Any]) -> list[str]:
    """Differences between two ``{"data": [trace…]}`` documents (traces matched by id)."""
    problems: list[str] = []
    ours = {t["traceID"]: t for t in file_doc.get("data") or []}
    theirs = {t["traceID"]: t for t in api_doc.get("data") or []}
    for trace_id in sorted(ours.keys() - theirs.keys()):
        problems.append(f"trace {trace_id}: in the file, not in Jaeger's answer")
    for trace_id in sorted(theirs.keys() - ours.keys()):
        problems.append(f"trace {trace_id}: in Jaeger's answer, not in the file")
    for trace_id in sorted(ours.keys() & theirs.keys()):
        problems.extend(compare_traces(ours[trace_id], theirs[trace_id]))
    for key in ("limit", "offset", "errors"):
        if file_doc.get(key) != api_doc.get(key):
            problems.append(
                f"envelope {key}: file {file_doc.get(key)!r}, Jaeger {api_doc.get(key)!r}"
            )
    return problems


def compare_traces(file_trace: Mapping[str, Any], api_trace: Mapping[str, Any]) -> list[str]:
    """Every non-allowed difference between one trace of the file and Jaeger's."""
    where = f"trace {file_trace.get('traceID')}"
    problems = _fields(where, file_trace, api_trace, ("traceID", "warnings"))
    if set(file_trace) != set(api_trace):
        problems.append(f"{where}: keys {sorted(file_trace)} vs Jaeger's {sorted(api_trace)}")
    ours = _by_span_id(file_trace, problems, "file")
    theirs = _by_span_id(api_trace, problems, "Jaeger")
    for span_id in sorted(ours.keys() - theirs.keys()):
        problems.append(f"{where} span {span_id}: in the file only")
    for span_id in sorted(theirs.keys() - ours.keys()):
        problems.append(f"{where} span {span_id}: in Jaeger's answer only")
    for span_id in sorted(ours.keys() & theirs.keys()):
        problems.extend(
            _compare_span(
                f"{where} span {span_id}",
                ours[span_id],
                theirs[span_id],
                file_trace.get("processes") or {},
                api_trace.get("processes") or {},
            )
        )
    used_ours = {_process_key(p) for p in (file_trace.get("processes") or {}).values()}
    used_theirs = {_process_key(p) for p in (api_trace.get("processes") or {}).values()}
    if used_ours != used_theirs:
        problems.append(f"{where}: processes differ: {used_ours ^ used_theirs}")
    return problems


_SPAN_FIELDS = (
    "traceID",
    "spanID",
    "operationName",
    "references",
    "startTime",
    "duration",
    "tags",
    "logs",
    "warnings",
)


def _compare_span(
    where: str,
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    our_processes: Mapping[str, Any],
    their_processes: Mapping[str, Any],
) -> list[str]:
    problems = _fields(where, ours, theirs, _SPAN_FIELDS)
    extra = set(ours) ^ set(theirs)
    if extra:
        problems.append(f"{where}: fields present on one side only: {sorted(extra)}")
    mine = our_processes.get(ours.get("processID", ""))
    jaegers = their_processes.get(theirs.get("processID", ""))
    if mine is None or jaegers is None:
        problems.append(f"{where}: processID does not resolve (file {mine!r}, Jaeger {jaegers!r})")
    elif not _same(mine, jaegers):
        problems.append(f"{where}: process {_short(mine)} vs Jaeger's {_short(jaegers)}")
    return problems


def _fields(
    where: str, ours: Mapping[str, Any], theirs: Mapping[str, Any], names: tuple[str, ...]
) -> list[str]:
    return [
        f"{where} {name}: file {_short(ours.get(name))} vs Jaeger {_short(theirs.get(name))}"
        for name in names
        if not _same(ours.get(name), theirs.get(name))
    ]


def _same(a: Any, b: Any) -> bool:
    """Deep equality where numbers compare by value (``3.0 == 3``) but not with bools."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _by_span_id(trace: Mapping[str, Any], problems: list[str], side: str) -> dict[str, Any]:
    spans: dict[str, Any] = {}
    for span in trace.get("spans") or []:
        if span["spanID"] in spans:
            problems.append(f"trace {trace.get('traceID')}: {side} repeats span {span['spanID']}")
        spans[span["spanID"]] = span
    return spans


def _process_key(process: Mapping[str, Any]) -> str:
    tags = sorted((t["key"], t["type"], str(t["value"])) for t in process.get("tags") or [])
    return f"{process.get('serviceName')}{tags}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
