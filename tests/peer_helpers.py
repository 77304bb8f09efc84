"""What a test does when a real peer (``make peers``) is missing."""

from __future__ import annotations

from typing import NoReturn

import pytest

from harness import peers


def missing_peer(reason: str) -> NoReturn:
    """Fail where the peer could be built (CI, or Go present: run ``make peers``); skip,
    saying why, only where it cannot be built here (no Go)."""
    if peers.required():
        pytest.fail(f"{reason} (Go is available, so the tests need it: run `make peers`)")
    pytest.skip(f"{reason} (no Go here to build it)")
