"""Service instances a test makes, all stopped at its end (a fixture helper)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from harness.services.base import Service

S = TypeVar("S", bound=Service)


def tracked(service_class: type[S]) -> Iterator[type[S]]:
    """Yield a subclass of ``service_class`` whose instances are remembered, then stop
    every one of them: ``yield from tracked(LocalRedis)`` in a fixture."""
    made: list[Service] = []

    class Tracked(service_class):  # type: ignore[valid-type,misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    try:
        yield Tracked
    finally:
        for service in made:
            service.stop()
