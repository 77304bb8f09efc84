"""The ``pytest11`` entry point: loads :mod:`harness.plugin` only when the ``harness``
extra is installed.

The wheel ships ``harness/`` beside the pipeline, so any pytest run in an environment
with ``pip install notepipe`` (no extra) loads this module. Importing the plugin there
would fail on its dependencies and break that project's tests; instead the plugin stays
off and the header says why.
"""

from __future__ import annotations

import importlib.util

import pytest

#: Modules of the ``harness`` extra that the plugin imports.
REQUIRED = ("httpx", "jinja2", "psutil", "testcontainers", "hypothesis", "google.protobuf")


def missing_modules() -> list[str]:
    missing = []
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a dotted name whose parent is absent
            found = False
        if not found:
            missing.append(name)
    return missing


MISSING = missing_modules()
pytest_plugins = [] if MISSING else ["harness.plugin"]


def pytest_report_header(config: pytest.Config) -> str | None:
    if not MISSING:
        return None
    return (
        f"notepipe harness: off (missing {', '.join(MISSING)}); "
        "pip install 'notepipe[harness]' to use it"
    )
