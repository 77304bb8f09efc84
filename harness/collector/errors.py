"""Errors of the trace collector, rooted at :class:`harness.errors.HarnessError`."""

from __future__ import annotations

from harness.errors import HarnessError


class CollectorError(HarnessError):
    """Root of the trace collector's errors."""


class MalformedRequest(CollectorError):
    """An OTLP request body could not be decoded (answered with HTTP 400)."""


class UnsupportedMediaType(CollectorError):
    """A request's Content-Type or Content-Encoding is not OTLP/HTTP (answered with HTTP 415)."""


class RequestTooLarge(CollectorError):
    """A request body (or its decompressed form) exceeds the receiver's limit (HTTP 413)."""
