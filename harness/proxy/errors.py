"""Errors of the proxy server (API errors in upstream's format) and of its client."""

from __future__ import annotations

import errno
import os

from harness.errors import HarnessError


class ToxiproxyError(HarnessError):
    """Root of the proxy package's errors raised to Python callers."""


class ApiError(ToxiproxyError):
    """An error answered over HTTP as ``{"error": message, "status": code}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def bad_request(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", 400)


PROXY_NOT_FOUND = "proxy not found"
PROXY_EXISTS = "proxy already exists"
TOXIC_NOT_FOUND = "toxic not found"
TOXIC_EXISTS = "toxic already exists"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
INVALID_TOXIC_TYPE = "invalid toxic type"


def go_os_error(op: str, address: str, exc: OSError) -> ApiError:
    """Render an OSError like Go's ``net.OpError`` text, as a 500 (upstream's behaviour)."""
    if exc.errno is not None and exc.errno in errno.errorcode:
        text = os.strerror(exc.errno)
        text = text[:1].lower() + text[1:]
        syscall = "bind" if op == "listen" else "connect"
        return ApiError(f"{op} tcp {address}: {syscall}: {text}", 500)
    return ApiError(f"{op} tcp {address}: {exc}", 500)
