"""harness.mutation: the catalog file, the patches kept in the repository, applying them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from harness.mutation.catalog import CatalogError, load_catalog, module_of, parse_catalog, select
from harness.mutation.regenerate import CannotRegenerate, regenerate
from harness.mutation.workspace import PatchDoesNotApply, apply_patch, copy_tree

REPO = Path(__file__).resolve().parents[2]
MUTANTS = REPO / "mutants"

PATCH = """\
diff --git a/src/pkg/mod.py b/src/pkg/mod.py
--- a/src/pkg/mod.py
+++ b/src/pkg/mod.py
@@ -1,2 +1,2 @@
 def guard(attempt, current):
-    return attempt == current
+    return True
"""

ENTRY = """
[[mutant]]
id = "{id}"
name = "always-true"
area = "fencing"
bug = "the guard always passes"
catchers = ["{catcher}"]
invariants = ["single_completion"]
"""


def _catalog(tmp_path: Path, *, id: str = "01", catcher: str = "scenarios/t.py::test_x") -> Path:
    (tmp_path / "01-always-true.patch").write_text(PATCH)
    (tmp_path / "catalog.toml").write_text(ENTRY.format(id=id, catcher=catcher))
    return tmp_path


def _tree(tmp_path: Path, body: str = "    return attempt == current\n") -> Path:
    tree = tmp_path / "tree"
    (tree / "src" / "pkg").mkdir(parents=True)
    (tree / "src" / "pkg" / "mod.py").write_text(f"def guard(attempt, current):\n{body}")
    return tree


def test_parse_catalog_reads_an_entry(tmp_path: Path) -> None:
    [m] = load_catalog(_catalog(tmp_path))
    assert m.label == "01-always-true"
    assert m.catchers == ("scenarios/t.py::test_x",)
    assert m.invariants == ("single_completion",)
    assert m.touched_files() == ("src/pkg/mod.py",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "1"}, "two digits"),
        ({"catcher": "test_x"}, "not a scenario node id"),
    ],
)
def test_parse_catalog_rejects_bad_entries(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        load_catalog(_catalog(tmp_path, **kwargs))


def test_parse_catalog_rejects_a_missing_patch_and_a_patch_outside_src(tmp_path: Path) -> None:
    text = ENTRY.format(id="01", catcher="scenarios/t.py::test_x")
    with pytest.raises(CatalogError, match=r"patch file .* is missing"):
        parse_catalog(text, tmp_path)
    (tmp_path / "01-always-true.patch").write_text(PATCH.replace("src/pkg", "harness/pkg"))
    with pytest.raises(CatalogError, match="patches src/ only"):
        parse_catalog(text, tmp_path)


def test_select_by_id_or_label_and_unknown_names(tmp_path: Path) -> None:
    mutants = load_catalog(_catalog(tmp_path))
    assert select(mutants, []) == mutants
    assert select(mutants, ["01", "01-always-true"]) == mutants
    with pytest.raises(CatalogError, match="unknown mutant"):
        select(mutants, ["99"])


def test_module_of() -> None:
    assert module_of("src/notepipe/store/ledger.py") == "notepipe.store.ledger"
    assert module_of("src/notepipe/stages/__init__.py") == "notepipe.stages"
    assert module_of("harness/x.py") is None


def test_apply_patch_changes_the_copy_only(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    [m] = load_catalog(_catalog(tmp_path / "cat"))
    source = _tree(tmp_path)
    copy = copy_tree(source, tmp_path / "copy")
    apply_patch(m, copy)
    assert "return True" in (copy / "src/pkg/mod.py").read_text()
    assert "return attempt == current" in (source / "src/pkg/mod.py").read_text()
    assert (copy / "reports").is_dir()


def test_a_patch_that_no_longer_applies_names_the_mutant_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    [m] = load_catalog(_catalog(tmp_path / "cat"))
    tree = _tree(tmp_path, body="    return attempt is current\n")
    with pytest.raises(PatchDoesNotApply) as err:
        apply_patch(m, tree)
    text = str(err.value)
    assert "01-always-true" in text
    assert "src/pkg/mod.py" in text
    assert "regenerate" in text
    assert "return attempt is current" in (tree / "src/pkg/mod.py").read_text()


# -- the catalog kept in the repository ---------------------------------------------------

AREAS = (
    "fencing",
    "leases and heartbeats",
    "reconciler (too eager)",
    "reconciler (too lazy)",
    "enqueueing",
    "retries",
    "timeouts",
    "result writing",
    "failure classification",
)


def test_the_repository_catalog_covers_every_area() -> None:
    mutants = load_catalog(MUTANTS)
    assert len(mutants) >= 12
    for area in AREAS:
        assert any(m.area.startswith(area) for m in mutants), f"no mutant for {area}"


def test_every_catcher_is_a_catalog_scenario() -> None:
    for m in load_catalog(MUTANTS):
        for node in m.catchers:
            path, _, name = node.partition("::")
            module = ast.parse((REPO / path).read_text())
            functions = {n.name for n in module.body if isinstance(n, ast.FunctionDef)}
            assert name.split("[")[0] in functions, f"{m.label}: {node} is not a scenario"


def test_every_patch_applies_to_the_current_src(tmp_path: Path) -> None:
    """The same check as `python -m harness.mutation --check`: src/ moved on if this fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "harness.mutation", "--check", "--repo", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_regenerate_replays_the_change_onto_moved_code(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    mod = repo / "src" / "pkg" / "mod.py"
    mod.parent.mkdir(parents=True)
    _git(repo.parent, "init", "-q", str(repo))
    mod.write_text("def guard(attempt, current):\n    return attempt == current\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "v1")
    mod.write_text("def guard(attempt, current):\n    return True\n")
    (tmp_path / "cat").mkdir()
    _catalog(tmp_path / "cat")
    (tmp_path / "cat" / "01-always-true.patch").write_text(_git(repo, "diff"))
    _git(repo, "checkout", "-q", "--", ".")
    # src/ moves on: new lines above the mutated one shift the patch's context.
    mod.write_text("import os\n\n\n" + mod.read_text())
    _git(repo, "commit", "-qam", "v2")
    [m] = load_catalog(tmp_path / "cat")
    assert regenerate(m, repo) is True
    assert "+    return True" in m.patch_text()
    copy = copy_tree(repo, tmp_path / "copy")
    apply_patch(m, copy)
    assert (copy / "src/pkg/mod.py").read_text().startswith("import os\n")
    assert "return True" in (copy / "src/pkg/mod.py").read_text()
    assert _git(repo, "status", "--porcelain") == ""  # the working tree was not touched
    assert regenerate(m, repo) is False  # already current

    mod.write_text("import os\n\n\ndef guard(attempt, current):\n    return attempt is current\n")
    _git(repo, "commit", "-qam", "v3: the guarded line itself changed")
    with pytest.raises(CannotRegenerate, match="01-always-true"):
        regenerate(m, repo)
