"""Per-process state of a worker: settings and loaded stages, set before forking horses.

The worker parent loads both once (so each forked horse inherits warm imports);
a job run by a plain ``rq worker`` falls back to loading them from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from notepipe.settings import Settings, load_settings
from notepipe.stages import LoadedStage, load_stages, warm_up


@dataclass(frozen=True)
class WorkerRuntime:
    settings: Settings
    stages: tuple[LoadedStage, ...]


_runtime: WorkerRuntime | None = None


def install_runtime(settings: Settings) -> WorkerRuntime:
    global _runtime  # noqa: PLW0603 - inherited by forked horses on purpose
    stages = tuple(load_stages(settings.stages))
    warm_up(list(stages))  # load models once in the parent; forked horses inherit them
    _runtime = WorkerRuntime(settings, stages)
    return _runtime


def get_runtime() -> WorkerRuntime:
    return _runtime if _runtime is not None else install_runtime(load_settings())
