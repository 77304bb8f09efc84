"""Real Redis and PostgreSQL for the checker's reader tests (the session service fixtures).

Imported directly: ``pytest_plugins`` is only allowed in the top-level conftest.
"""

from harness.fixtures.services import (  # noqa: F401
    fresh_database,
    postgres_service,
    redis_service,
    redis_url,
)
