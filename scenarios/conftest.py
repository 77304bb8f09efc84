"""Scenario defaults. Each scenario module covers one fault family and ends with the
checker's verdict, which must be ``valid``."""

import pytest

from harness.session import SESSION_KEY

SECONDS_PER_SOAK_EXAMPLE = 150


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A soak (``--notepipe-soak N``) runs N schedules: lift the per-test timeout to match."""
    soak = config.stash[SESSION_KEY].soak_examples
    if not soak:
        return
    for item in items:
        if item.name == "test_mixed_schedules":
            item.add_marker(pytest.mark.timeout(SECONDS_PER_SOAK_EXAMPLE * soak))
