"""harness.mutation.runner end to end, with a stand-in for ``python -m pytest``.

The stand-in writes the summary.json a scenario run would write, and (like the
pipeline's API/worker processes) imports the patched module in a child process
whose argv is ``.../notepipe/cli.py``: what the runner's sanity check looks for.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from harness.mutation.catalog import load_catalog
from harness.mutation.runner import RunOptions, pytest_command, run_mutant

PATCH = """\
diff --git a/src/pkg/mod.py b/src/pkg/mod.py
--- a/src/pkg/mod.py
+++ b/src/pkg/mod.py
@@ -1 +1 @@
-FENCED = True
+FENCED = False
"""

CATALOG = """
[[mutant]]
id = "01"
name = "unfenced"
area = "fencing"
bug = "b"
catchers = ["scenarios/a.py::test_valid", "scenarios/b.py::test_invalid", "scenarios/c.py::test_x"]
invariants = ["single_completion"]
"""

FAKE_PYTEST = """\
#!{python}
import json, os, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
node = args[2]
report = Path(args[args.index("--notepipe-report-dir") + 1]) / "20261202T000000Z-1"
report.mkdir(parents=True)
Path(os.environ["FAKE_ARGS_LOG"]).open("a").write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_IMPORTS") == "1":
    code = "import sys; sys.argv = ['/x/src/notepipe/cli.py', 'worker']; import pkg.mod"
    subprocess.run([{python!r}, "-c", code], check=True)
killed = node.endswith("test_invalid")
scenario = {{
    "nodeid": node, "outcome": "failed", "verdict": "invalid" if killed else "valid",
    "invariants": {{}}, "reasons": [], "config": {{"service_budget_s": 0.1}},
    "violations": [{{"invariant": "single_completion"}}] if killed else [],
}}
(report / "summary.json").write_text(json.dumps({{"scenarios": [scenario]}}))
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "__init__.py").write_text("")
    (repo / "src" / "pkg" / "mod.py").write_text("FENCED = True\n")
    (repo / "mutants").mkdir()
    (repo / "mutants" / "catalog.toml").write_text(CATALOG)
    (repo / "mutants" / "01-unfenced.patch").write_text(PATCH)
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTEST.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return repo, fake


def test_runs_catchers_until_the_first_invalid_and_checks_the_mutant_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, fake = _setup(tmp_path)
    args_log = tmp_path / "args.jsonl"
    monkeypatch.setenv("FAKE_ARGS_LOG", str(args_log))
    monkeypatch.setenv("FAKE_IMPORTS", "1")
    [mutant] = load_catalog(repo / "mutants")
    options = RunOptions(python=str(fake), workdir=tmp_path, service_budget_s=0.25)
    result = run_mutant(mutant, repo=repo, options=options)
    assert result.error is None
    assert result.status == "killed"
    assert [r.nodeid.split("::")[1] for r in result.runs] == ["test_valid", "test_invalid"]
    assert result.deciding_run is result.runs[1]
    calls = [json.loads(line) for line in args_log.read_text().splitlines()]
    assert all("--notepipe-service-budget=0.25" in c for c in calls)
    assert (repo / "src" / "pkg" / "mod.py").read_text() == "FENCED = True\n"  # untouched
    assert not list(tmp_path.glob("notepipe-mutant-01-*"))  # a killed mutant leaves nothing


def test_a_run_that_never_imported_the_mutant_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, fake = _setup(tmp_path)
    monkeypatch.setenv("FAKE_ARGS_LOG", str(tmp_path / "args.jsonl"))
    monkeypatch.setenv("FAKE_IMPORTS", "0")
    [mutant] = load_catalog(repo / "mutants")
    result = run_mutant(mutant, repo=repo, options=RunOptions(python=str(fake), workdir=tmp_path))
    assert result.status == "error"
    assert result.error is not None
    assert "no API, worker or reconciler process imported the mutated pkg.mod" in result.error
    [kept] = tmp_path.glob("notepipe-mutant-01-*")  # logs and reports kept for a look
    assert (kept / "catcher-1.log").is_file()
    assert not (kept / "repo").exists()


def test_pytest_command_passes_the_budget_only_when_given(tmp_path: Path) -> None:
    plain = pytest_command("py", "scenarios/t.py::test_x", tmp_path)
    assert plain[:4] == ["py", "-m", "pytest", "scenarios/t.py::test_x"]
    assert not any(a.startswith("--notepipe-service-budget") for a in plain)
    given = pytest_command("py", "scenarios/t.py::test_x", tmp_path, service_budget_s=0.5)
    assert "--notepipe-service-budget=0.5" in given
