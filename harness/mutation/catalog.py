"""The mutant catalog: ``mutants/catalog.toml`` plus one patch file per mutant."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessConfigError

CATALOG_FILE = "catalog.toml"
_ID = re.compile(r"^\d{2}$")
_TOUCHED = re.compile(r"^\+\+\+ b/(\S+)", re.MULTILINE)


class CatalogError(HarnessConfigError):
    """The mutant catalog is malformed; the message names the entry and the fix."""


@dataclass(frozen=True)
class Mutant:
    """One catalog entry: the bug a patch re-introduces and who must catch it."""

    id: str
    name: str
    area: str
    bug: str
    patch: Path
    catchers: tuple[str, ...]
    """pytest node ids of catalog scenarios, fastest first; the run stops at the first
    ``invalid``."""
    invariants: tuple[str, ...]
    """The invariant(s) expected to fire (informational: any named invariant kills)."""
    known_gap: str | None = None
    """Why the catalog cannot kill this mutant yet: it still runs and shows in the table,
    but its survival does not fail the run (it is reported as a known gap)."""

    @property
    def label(self) -> str:
        return f"{self.id}-{self.name}"

    def patch_text(self) -> str:
        return self.patch.read_text(encoding="utf-8")

    def touched_files(self) -> tuple[str, ...]:
        """Repository paths the patch changes (from its ``+++ b/...`` lines)."""
        return tuple(dict.fromkeys(_TOUCHED.findall(self.patch_text())))


def module_of(path: str) -> str | None:
    """``src/notepipe/store/ledger.py`` → ``notepipe.store.ledger`` (None for non-modules)."""
    if not path.startswith("src/") or not path.endswith(".py"):
        return None
    parts = path[len("src/") : -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _strings(entry: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: '{key}' must be a non-empty list of strings")
    return tuple(str(v) for v in value)


def _text(entry: dict[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def parse_catalog(text: str, directory: Path) -> list[Mutant]:
    """Parse the catalog's TOML (``[[mutant]]`` tables); check ids, patches and catchers."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{directory / CATALOG_FILE}: not valid TOML: {exc}") from exc
    entries = data.get("mutant")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{directory / CATALOG_FILE}: no [[mutant]] entries")
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        where = f"{directory / CATALOG_FILE}: mutant #{i}"
        mutant_id = _text(entry, "id", where)
        if not _ID.match(mutant_id) or mutant_id in seen:
            raise CatalogError(f"{where}: id {mutant_id!r} must be two digits and unique")
        seen.add(mutant_id)
        name = _text(entry, "name", where)
        where = f"{directory / CATALOG_FILE}: mutant {mutant_id}-{name}"
        patch = directory / f"{mutant_id}-{name}.patch"
        if not patch.is_file():
            raise CatalogError(f"{where}: patch file {patch} is missing")
        catchers = _strings(entry, "catchers", where)
        for node in catchers:
            if not node.startswith("scenarios/") or "::" not in node:
                raise CatalogError(
                    f"{where}: catcher {node!r} is not a scenario node id; write it as "
                    "'scenarios/test_x.py::test_name'"
                )
        mutant = Mutant(
            id=mutant_id,
            name=name,
            area=_text(entry, "area", where),
            bug=_text(entry, "bug", where),
            patch=patch,
            catchers=catchers,
            invariants=_strings(entry, "invariants", where),
            known_gap=_text(entry, "known_gap", where) if "known_gap" in entry else None,
        )
        outside = [p for p in mutant.touched_files() if not p.startswith("src/")]
        if not mutant.touched_files() or outside:
            raise CatalogError(
                f"{where}: a mutant patches src/ only (git diff format, 'b/' paths); "
                f"it touches {list(mutant.touched_files()) or 'nothing'}"
            )
        mutants.append(mutant)
    return mutants


def load_catalog(directory: Path) -> list[Mutant]:
    path = directory / CATALOG_FILE
    if not path.is_file():
        raise CatalogError(f"no mutant catalog at {path}; run from the repository root")
    return parse_catalog(path.read_text(encoding="utf-8"), directory)


def select(mutants: Sequence[Mutant], wanted: Sequence[str]) -> list[Mutant]:
    """Mutants whose id or label is in ``wanted`` (all when empty); unknown names raise."""
    if not wanted:
        return list(mutants)
    by_key = {m.id: m for m in mutants} | {m.label: m for m in mutants}
    unknown = [w for w in wanted if w not in by_key]
    if unknown:
        raise CatalogError(
            f"unknown mutant(s) {unknown}; known: {', '.join(m.label for m in mutants)}"
        )
    return list(dict.fromkeys(by_key[w] for w in wanted))
