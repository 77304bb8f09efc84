"""The state of one notepipe pytest session (a *run*): backend, run id, report dir, records."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.services.base import BackendName

SESSION_KEY = pytest.StashKey["NotepipeSession"]()


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def _binary_version(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def backend_versions(backend: BackendName) -> dict[str, str]:
    """What the header can say before any service starts."""
    if backend == "local":
        from harness.services.local_postgres import LocalPostgres

        try:
            postgres = LocalPostgres().version
        except Exception as exc:
            postgres = f"unavailable ({exc})"
        return {"redis": _binary_version("redis-server", "--version"), "postgres": postgres}
    if backend == "testcontainers":
        from harness.services.containers import postgres_image, redis_image

        return {
            "redis": f"image {redis_image(os.environ)}",
            "postgres": f"image {postgres_image(os.environ)}",
        }
    return {"redis": "external", "postgres": "external"}


@dataclass
class NotepipeSession:
    backend: BackendName
    run_id: str
    report_root: Path
    jaeger_endpoint: str | None
    soak_examples: int | None
    jaeger_query_url: str | None = None  # set when the harness started Jaeger itself
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    versions: dict[str, str] = field(default_factory=dict)
    service_versions: dict[str, str] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    report_path: Path | None = None
    report_error: str | None = None
    verdicts: list[tuple[str, str, str, Any]] = field(default_factory=list)
    margins: dict[str, float | None] = field(default_factory=dict)  # scenario -> tightest (s)
    calibration: Any = None  # harness.calibration.Calibration, once measured or given
    jaeger_check: dict[str, Any] | None = None

    @property
    def parts_dir(self) -> Path:
        return self.report_root / self.run_id / "parts"

    @property
    def python(self) -> str:
        return f"{platform.python_implementation()} {sys.version.split()[0]}"
