"""Enrichment stages: the contract, the loader and the runner.

A stage is any callable ``stage(ctx: StageContext) -> Mapping[str, Any]`` named by
an import path (``"package.module:attr"``, or ``"package.module.attr"``). Its
output, which must be JSON-serialisable, is stored in the note's enrichment under
the stage's name: the callable's ``stage_name`` attribute if set, else its
``__name__``.

A stage may carry a ``warm_up`` attribute: a no-argument callable doing its slow,
lazy loading (language profiles, stopword lists). :func:`warm_up` calls them; a
forking worker calls it once in the parent so each work-horse inherits the
loaded state instead of paying ~1 s per job.

A stage marked ``provides_text = True`` (or, without that attribute, named
``normalize``) sets ``ctx.text`` for the stages after it from the ``"text"`` key
of its output.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from notepipe.errors import StageError

__all__ = ["LoadedStage", "Stage", "StageContext", "enrich", "load_stages", "warm_up"]

_EXAMPLE_PATH = "notepipe.stages.normalize:normalize"


@dataclass(frozen=True)
class StageContext:
    """What a stage sees of one attempt at one note."""

    note_id: int
    attempt: int
    content: str
    metadata: Mapping[str, Any]
    text: str
    """The normalized text once a text-providing stage (``normalize``) ran; else the content."""
    results: Mapping[str, Any]
    """Outputs of the earlier stages, keyed by stage name (read-only)."""
    max_chars: int = 0
    """The most characters of ``text`` a costly stage (language, keywords) should analyse;
    0 means no cap (``NOTEPIPE_STAGE_MAX_CHARS``)."""


class Stage(Protocol):
    """An enrichment stage: returns a JSON-serialisable mapping for its enrichment key."""

    def __call__(self, ctx: StageContext) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class LoadedStage:
    """A stage resolved from its import path."""

    name: str
    func: Stage
    path: str
    provides_text: bool = False


def _split_path(path: str) -> tuple[str, str]:
    if ":" in path:
        module, _, attr = path.partition(":")
    else:
        module, _, attr = path.rpartition(".")
    if not module or not attr or ":" in attr:
        raise StageError(
            f"stage path {path!r} is not an import path; write it as 'package.module:function', "
            f"e.g. {_EXAMPLE_PATH!r}"
        )
    return module, attr


@functools.lru_cache(maxsize=256)
def _load_one(path: str) -> LoadedStage:
    module_name, attr = _split_path(path.strip())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and f"{module_name}.".startswith(f"{exc.name}."):
            raise StageError(
                f"stage path {path!r}: module {module_name!r} not found; check the spelling and "
                "that its package is installed in the worker's environment (NOTEPIPE_STAGES)"
            ) from exc
        raise StageError(
            f"stage path {path!r}: importing {module_name!r} failed because its dependency "
            f"{exc.name!r} is missing; install it in the worker's environment"
        ) from exc
    except Exception as exc:
        raise StageError(
            f"stage path {path!r}: importing {module_name!r} raised {exc!r}; fix the module or "
            "remove the path from NOTEPIPE_STAGES"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise StageError(
                f"stage path {path!r}: {module_name!r} has no attribute {attr!r}; "
                "check the name after the ':'"
            ) from None
    if not callable(obj):
        raise StageError(
            f"stage path {path!r} names a {type(obj).__name__}, not a callable; "
            "point it at a function taking a StageContext"
        )
    name = getattr(obj, "stage_name", None) or getattr(obj, "__name__", None)
    if not isinstance(name, str) or not name:
        raise StageError(
            f"stage path {path!r}: cannot tell the stage's name; give it a 'stage_name' attribute"
        )
    provides_text = bool(getattr(obj, "provides_text", name == "normalize"))
    return LoadedStage(name=name, func=obj, path=path, provides_text=provides_text)


def load_stages(paths: Sequence[str]) -> list[LoadedStage]:
    """Resolve import paths to stages, in order. Imports are cached per process.

    Raises :class:`StageError` naming the bad path and how to fix it.
    """
    if isinstance(paths, str):
        raise StageError(
            f"load_stages() takes a sequence of import paths, not the string {paths!r}; "
            "split a comma-separated setting first"
        )
    stages = [_load_one(path) for path in paths]
    seen: dict[str, str] = {}
    for stage in stages:
        if stage.name in seen:
            raise StageError(
                f"stages {seen[stage.name]!r} and {stage.path!r} share the enrichment key "
                f"{stage.name!r}; remove one or set a distinct 'stage_name' attribute"
            )
        seen[stage.name] = stage.path
    return stages


def _check_output(stage: LoadedStage, output: object) -> dict[str, Any]:
    if not isinstance(output, Mapping):
        raise StageError(
            f"stage {stage.name!r} ({stage.path}) returned a {type(output).__name__}, "
            "not a mapping; return a dict"
        )
    result = dict(output)
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StageError(
            f"stage {stage.name!r} ({stage.path}) returned output that is not JSON-serialisable "
            f"({exc}); return only str, int, float (finite), bool, None, lists and str-keyed dicts"
        ) from None
    return result


def enrich(
    stages: Sequence[LoadedStage],
    *,
    note_id: int,
    attempt: int,
    content: str,
    metadata: Mapping[str, Any],
    max_chars: int = 0,
) -> dict[str, Any]:
    """Run ``stages`` in order and return the enrichment ``{stage_name: output, ...}``.

    An exception raised by a stage propagates unchanged (with a note naming the
    stage); output that is not a JSON-serialisable mapping raises :class:`StageError`.
    ``max_chars`` caps the text the costly stages analyse (see :class:`StageContext`).
    """
    results: dict[str, Any] = {}
    frozen_metadata = MappingProxyType(dict(metadata))
    text = content
    for stage in stages:
        ctx = StageContext(
            note_id=note_id,
            attempt=attempt,
            content=content,
            metadata=frozen_metadata,
            text=text,
            results=MappingProxyType(dict(results)),
            max_chars=max_chars,
        )
        try:
            raw = stage.func(ctx)
        except Exception as exc:
            exc.add_note(f"in enrichment stage {stage.name!r} ({stage.path})")
            raise
        output = _check_output(stage, raw)
        if stage.provides_text:
            new_text = output.get("text")
            if not isinstance(new_text, str):
                raise StageError(
                    f"stage {stage.name!r} ({stage.path}) provides the text but its output has "
                    "no str 'text' key; return {'text': ...} or drop 'provides_text'"
                )
            text = new_text
        results[stage.name] = output
    return results


def warm_up(stages: Sequence[LoadedStage]) -> None:
    """Run each stage's optional ``warm_up()`` (lazy imports, model loading), in order.

    Call it in a worker's parent process before it forks work-horses.
    """
    for stage in stages:
        hook = getattr(stage.func, "warm_up", None)
        if hook is None:
            continue
        try:
            hook()
        except Exception as exc:
            raise StageError(
                f"warming up stage {stage.name!r} ({stage.path}) failed: {exc!r}; "
                "check that its libraries and data files are installed"
            ) from exc
