"""Layers point one way: the pipeline (``src/notepipe``) never imports its test harness."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "notepipe"


def harness_imports(path: Path) -> list[str]:
    """``file:line: statement`` for every import of ``harness`` (top-level or nested)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "harness" or name.startswith("harness.") for name in names):
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_src_imports_nothing_from_harness() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"expected the pipeline's modules under {SRC}"
    offenders = [line for path in files for line in harness_imports(path)]
    assert not offenders, "src/notepipe must not import harness:\n" + "\n".join(offenders)


def test_the_check_sees_nested_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from harness.wait import wait_until\n    import harness\n")
    assert [line.split(": ", 1)[1] for line in harness_imports(module)] == [
        "from harness.wait import wait_until",
        "import harness",
    ]
