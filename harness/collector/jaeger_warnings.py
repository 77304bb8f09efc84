"""The span warnings Jaeger's query service adds to a trace, computed the same way.

Jaeger (v1.76.0, ``cmd/query/app/querysvc/internal/adjuster/clockskew.go``) walks each
trace's span tree when it answers ``/api/traces``. A span whose parent is not in the
trace gets ``invalid parent span IDs=…``; a child on another host (a process without
an ``ip`` tag counts as another host) that does not fit inside its parent gets a
calculated clock-skew delta, which with adjustment disabled (the default, and our
configuration) is only reported: ``clock skew adjustment disabled; not applying
calculated delta of …``. Async children (a queue consumer after its producer) show it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.spans import SpanRecord

ORPHAN = "invalid parent span IDs={}; skipping clock skew adjustment"
SKEW_NOT_APPLIED = "clock skew adjustment disabled; not applying calculated delta of {}"


def span_warnings(
    spans: Sequence[SpanRecord], host_key: Callable[[SpanRecord], str]
) -> dict[str, list[str]]:
    """span id -> the warnings Jaeger's query service attaches to it (max skew 0)."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    warnings: dict[str, list[str]] = {}
    for span in by_id.values():
        if not span.parent_span_id:
            roots.append(span)
        elif span.parent_span_id in by_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            warnings.setdefault(span.span_id, []).append(ORPHAN.format(span.parent_span_id))
            roots.append(span)

    # (span, parent, inherited delta, inherited host key), walked without recursion
    stack: list[tuple[SpanRecord, SpanRecord | None, int, str]] = [
        (root, None, 0, host_key(root)) for root in roots
    ]
    while stack:
        span, parent, delta, host = stack.pop()
        own_host = host_key(span)
        if parent is not None and (own_host != host or own_host == ""):
            delta, host = _skew(span, parent), own_host
        if delta:
            warnings.setdefault(span.span_id, []).append(
                SKEW_NOT_APPLIED.format(go_duration(delta))
            )
        stack.extend((child, span, delta, host) for child in children.get(span.span_id, ()))
    return warnings


def _skew(child: SpanRecord, parent: SpanRecord) -> int:
    """``calculateSkew``: the shift (ns) that would centre ``child`` inside ``parent``."""
    parent_duration = parent.end_ns - parent.start_ns
    child_duration = child.end_ns - child.start_ns
    if child_duration > parent_duration:
        return parent.start_ns - child.start_ns if child.start_ns < parent.start_ns else 0
    if child.start_ns >= parent.start_ns and child.end_ns <= parent.end_ns:
        return 0
    latency = (parent_duration - child_duration) // 2
    return parent.start_ns + latency - child.start_ns


_UNITS = ((1_000_000, "ms"), (1_000, "µs"))


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``-2.944911432s``, ``1.5ms``, ``1h2m0.5s``, ``0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    value = abs(ns)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000_000:
        for size, unit in _UNITS:
            if value >= size:
                return f"{sign}{_fraction(value, size)}{unit}"
    hours, rest = divmod(value, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_fraction(rest, 1_000_000_000)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
