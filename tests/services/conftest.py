"""The service fixtures, imported directly.

``pytest_plugins`` is only allowed in the top-level conftest (pytest errors on
it here when run as ``pytest tests``); once ``harness.plugin`` registers
``harness.fixtures.services`` these imports become redundant.
"""

from harness.fixtures.services import (  # noqa: F401
    fresh_database,
    postgres_service,
    redis_service,
    redis_url,
)
