"""A mutated copy of the repository: copy the tree, apply one patch, watch its imports.

The working tree is never modified. The copy's ``src/`` and root go first on
``PYTHONPATH``, ahead of the editable install's path entries, so pytest, the API,
the workers and the reconciler (subprocesses inheriting the environment) all import
the mutated code. A ``sitecustomize`` in the copy records, in every Python process,
where each mutated module was imported from and the SHA-256 of that file: the
runner checks that pipeline processes really ran the patched file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.mutation.catalog import Mutant, module_of

#: Not copied: environments, VCS data, caches and generated reports.
IGNORED: tuple[str, ...] = (".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache")
IGNORED += (".hypothesis", "__pycache__", "node_modules", "reports", ".notepipe", "build", "dist")

LOG_ENV = "MUTATION_IMPORT_LOG"
WATCH_ENV = "MUTATION_WATCH_MODULES"
SITE_DIR = ".mutation-site"

#: Runs at start-up of every Python process with the copy on PYTHONPATH. The variable
#: names avoid the NOTEPIPE_ prefix, which the harness strips from pipeline processes.
SITECUSTOMIZE = f'''"""Written by harness.mutation: log where watched modules are imported from."""
import hashlib, json, os, sys
from importlib.machinery import PathFinder

_LOG = os.environ.get("{LOG_ENV}")
_WATCH = frozenset(filter(None, os.environ.get("{WATCH_ENV}", "").split(",")))


class _MutationWatch:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _WATCH:
            return None
        spec = PathFinder.find_spec(name, path)
        if spec is not None and spec.origin:
            with open(spec.origin, "rb") as src:
                digest = hashlib.sha256(src.read()).hexdigest()
            record = {{"pid": os.getpid(), "argv": sys.argv[:3], "module": name,
                      "origin": spec.origin, "sha256": digest}}
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\\n")
        return spec


if _LOG and _WATCH:
    sys.meta_path.insert(0, _MutationWatch)
'''


class PatchDoesNotApply(HarnessError):
    """A mutant's patch no longer applies to the current ``src/``."""


class MutantDidNotRun(HarnessError):
    """The pipeline processes did not import the mutated code: the run proves nothing."""


@dataclass(frozen=True)
class ImportRecord:
    pid: int
    argv: tuple[str, ...]
    module: str
    origin: str
    sha256: str

    @property
    def pipeline_process(self) -> bool:
        """An API, worker or reconciler process (``python -m notepipe.cli ...``)."""
        return any(a.endswith("notepipe/cli.py") or a == "notepipe.cli" for a in self.argv)


def copy_tree(source: Path, dest: Path) -> Path:
    """Copy the repository at ``source`` to ``dest`` (which must not exist)."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*IGNORED), symlinks=True)
    (dest / "reports").mkdir()
    return dest


def apply_patch(mutant: Mutant, tree: Path) -> None:
    """Apply ``mutant``'s patch to ``tree``; raise :class:`PatchDoesNotApply` naming the
    mutant and the file(s) when it does not apply cleanly."""
    patch = str(mutant.patch.resolve())
    for args in (["--check"], []):
        proc = subprocess.run(
            ["git", "apply", "--whitespace=nowarn", *args, patch],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            files = ", ".join(mutant.touched_files())
            raise PatchDoesNotApply(
                f"mutant {mutant.label}: {mutant.patch.name} does not apply to {files}:\n"
                f"{proc.stderr.strip()}\n"
                "src/ changed since the patch was made: re-create the bug on the current "
                f"file and regenerate the patch (git diff -- {files} > mutants/{mutant.patch.name})"
            )


def mutated_digests(mutant: Mutant, tree: Path) -> dict[str, str]:
    """Module name → SHA-256 of the patched file in ``tree``."""
    out: dict[str, str] = {}
    for path in mutant.touched_files():
        module = module_of(path)
        if module is not None:
            out[module] = hashlib.sha256((tree / path).read_bytes()).hexdigest()
    return out


def prepare(mutant: Mutant, source: Path, dest: Path) -> dict[str, str]:
    """Copy, patch and instrument a tree for ``mutant``; return the mutated digests."""
    copy_tree(source, dest)
    apply_patch(mutant, dest)
    site = dest / SITE_DIR
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return mutated_digests(mutant, dest)


def mutant_env(
    base: Mapping[str, str], tree: Path, digests: Mapping[str, str], log: Path
) -> dict[str, str]:
    """The environment for a run in ``tree``: the copy first on the import path."""
    env = dict(base)
    paths = [str(tree / SITE_DIR), str(tree / "src"), str(tree)]
    if base.get("PYTHONPATH"):
        paths.append(base["PYTHONPATH"])
    env["PYTHONPATH"] = ":".join(paths)
    env[LOG_ENV] = str(log)
    env[WATCH_ENV] = ",".join(sorted(digests))
    env.pop("PYTHONSAFEPATH", None)
    env.pop("PYTHONNOUSERSITE", None)
    return env


def read_import_log(log: Path) -> list[ImportRecord]:
    if not log.is_file():
        return []
    records = []
    for line in log.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            records.append(
                ImportRecord(
                    pid=int(raw["pid"]),
                    argv=tuple(raw["argv"]),
                    module=str(raw["module"]),
                    origin=str(raw["origin"]),
                    sha256=str(raw["sha256"]),
                )
            )
    return records


def verify_mutant_ran(
    records: list[ImportRecord], digests: Mapping[str, str], tree: Path
) -> list[str]:
    """Problems with the sanity check (empty = the pipeline ran the mutated code).

    Every mutated module must have been imported by at least one pipeline process
    from the copy with the patched content, and no process may have imported it
    from anywhere else.
    """
    problems: list[str] = []
    root = str(tree.resolve())
    for module, digest in sorted(digests.items()):
        mine = [r for r in records if r.module == module]
        elsewhere = sorted({r.origin for r in mine if not r.origin.startswith(root)})
        if elsewhere:
            problems.append(f"{module} was imported from outside the mutated copy: {elsewhere}")
        stale = sorted({r.origin for r in mine if r.sha256 != digest})
        if stale:
            problems.append(f"{module} was imported without the patch applied: {stale}")
        ran = [r for r in mine if r.pipeline_process and r.sha256 == digest]
        if not ran:
            problems.append(
                f"no API, worker or reconciler process imported the mutated {module} "
                f"(imports seen: {len(mine)})"
            )
    return problems
