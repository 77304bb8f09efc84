"""Live progress of a long scenario run on the terminal (rich), never in captured output.

On a terminal a rich status line shows the phase (load, faults, quiescence, check);
elsewhere (CI logs) one plain line per phase is written when pytest runs with ``-v``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console


class RunProgress:
    def __init__(self, name: str, *, enabled: bool, live: bool) -> None:
        self.name = name
        self.enabled = enabled
        self.live = live and enabled
        self._console = Console(file=sys.__stderr__, highlight=False) if enabled else None
        self._status: Any = None
        self._last = ""

    def __enter__(self) -> RunProgress:
        if self.live and self._console is not None:
            self._status = self._console.status(f"[bold]{self.name}[/bold]: starting")
            self._status.start()
        return self

    def update(self, message: str) -> None:
        if not self.enabled or message == self._last:
            return
        self._last = message
        if self._status is not None:
            self._status.update(f"[bold]{self.name}[/bold]: {message}")
        elif self._console is not None:
            self._console.print(f"  {self.name}: {message}")

    def __exit__(self, *exc_info: object) -> None:
        if self._status is not None:
            self._status.stop()
