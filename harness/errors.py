"""The error root of the harness."""

from __future__ import annotations


class HarnessError(Exception):
    """Root of all harness errors."""


class ServiceStartError(HarnessError):
    """A service did not become ready; the message carries its log tail and a hint."""


class HarnessConfigError(HarnessError):
    """The harness configuration is invalid; nothing was started."""
