"""Refresh a mutant's patch after ``src/`` moved on: a 3-way merge against ``HEAD``.

The patch's ``index`` line names the blobs it was made from; ``git apply --3way
--cached`` into a throw-away index replays the change onto ``HEAD``'s files (the
working tree and the real index are not touched), and the diff of that index
against ``HEAD`` is the regenerated patch. A change that conflicts with the new
code is an error: re-create the bug by hand.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.mutation.catalog import Mutant


class CannotRegenerate(HarnessError):
    """The patch's change does not merge onto the current ``src/``."""


def _git(repo: Path, *args: str, index: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GIT_INDEX_FILE=str(index))
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )


def regenerate(mutant: Mutant, repo: Path) -> bool:
    """Rewrite ``mutant``'s patch against ``HEAD`` of ``repo``; False if it was current."""
    with tempfile.TemporaryDirectory(prefix="notepipe-mutant-index-") as tmp:
        index = Path(tmp) / "index"
        steps = (
            ("read-tree", "HEAD"),
            ("apply", "--cached", "--3way", "--whitespace=nowarn", str(mutant.patch.resolve())),
        )
        for step in steps:
            proc = _git(repo, *step, index=index)
            if proc.returncode != 0:
                raise CannotRegenerate(
                    f"mutant {mutant.label}: git {step[0]} failed: {proc.stderr.strip()}; "
                    "re-create the bug on the current file by hand and save "
                    f"`git diff -- {' '.join(mutant.touched_files())}` as {mutant.patch}"
                )
        diff = _git(repo, "diff", "--cached", "HEAD", "--", "src", index=index)
    if diff.returncode != 0 or not diff.stdout.strip():
        raise CannotRegenerate(f"mutant {mutant.label}: the merged patch changes nothing in src/")
    if diff.stdout == mutant.patch_text():
        return False
    mutant.patch.write_text(diff.stdout, encoding="utf-8")
    return True
