"""The real Jaeger beside the harness: start it, query it, compare ``jaeger.json`` with it."""

from __future__ import annotations

from harness.jaeger.compare import ALLOWED_DIFFERENCES, compare_documents, compare_traces
from harness.jaeger.query import JaegerQuery, JaegerQueryError, SpanCount
from harness.jaeger.server import (
    ENV_BINARY,
    JaegerNotFound,
    JaegerServer,
    find_jaeger,
    jaeger_config,
    jaeger_version,
)

__all__ = [
    "ALLOWED_DIFFERENCES",
    "ENV_BINARY",
    "JaegerNotFound",
    "JaegerQuery",
    "JaegerQueryError",
    "JaegerServer",
    "SpanCount",
    "compare_documents",
    "compare_traces",
    "find_jaeger",
    "jaeger_config",
    "jaeger_version",
]
