"""Process logging: every record redacted, written to the stderr of the moment."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from notepipe.logs import setup_logging


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_into(stream: io.StringIO, message: str) -> str:
    saved = sys.stderr
    sys.stderr = stream
    try:
        logging.getLogger("notepipe.test").warning(message)
    finally:
        sys.stderr = saved
    return stream.getvalue()


@pytest.mark.usefixtures("root_logging")
def test_passwords_in_log_records_are_masked() -> None:
    setup_logging("INFO")
    written = _log_into(io.StringIO(), "connecting to postgresql://app:s3cret@db:5432/notes")
    assert "s3cret" not in written
    assert "postgresql://app:***@db:5432/notes" in written


@pytest.mark.usefixtures("root_logging")
def test_logging_follows_stderr_after_the_one_it_started_with_is_closed() -> None:
    first = io.StringIO()
    saved = sys.stderr
    sys.stderr = first
    try:
        setup_logging("INFO")
    finally:
        sys.stderr = saved
    first.close()  # e.g. a test's capture ended: the old handler wrote into a closed file

    written = _log_into(io.StringIO(), "still logging")
    assert "Logging error" not in written, written
    assert written.endswith("notepipe.test: still logging\n"), written
