"""The run report's span files, and how to open each.

* ``spans.otlp.jsonl.gz``: every span of the run as OTLP JSON Lines (the
  OpenTelemetry file-exporter format), gzip-compressed.
* ``jaeger.json.gz``: every trace of the run as Jaeger JSON, gzip-compressed.
* ``jaeger/NN-<scenario>.json``: one Jaeger JSON file per scenario, plain (for the
  Jaeger UI's upload) unless larger than :data:`UPLOAD_MAX_BYTES`, then ``.json.gz``.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.collector.export import write_jaeger_json, write_otlp_jsonl
from harness.record import ScenarioRecord
from harness.spans import SpanRecord

OTLP_FILE = "spans.otlp.jsonl.gz"
JAEGER_FILE = "jaeger.json.gz"
SCENARIO_DIR = "jaeger"
#: A per-scenario Jaeger file up to this size stays plain JSON for the UI's upload.
UPLOAD_MAX_BYTES = 16 * 1024 * 1024

#: How to open each file (index.html and reports/README.md say the same).
HOW_TO_OPEN: dict[str, str] = {
    "jaeger_scenario": "Jaeger UI → Search → Upload JSON (the file as it is; a .json.gz "
    "one after gunzip)",
    "jaeger_run": "gunzip, then Jaeger UI → Search → Upload JSON (every trace of the run: "
    "slow in the UI for big runs, prefer the per-scenario files); or jq",
    "otlp": "each line is one OTLP/JSON export request; `zcat spans.otlp.jsonl.gz | while "
    "IFS= read -r l; do printf '%s' \"$l\" | curl -sf -H 'Content-Type: application/json' "
    '--data-binary @- "$OTLP_ENDPOINT/v1/traces"; done` sends it to any OTLP/HTTP receiver '
    "(Jaeger, a Collector); a Collector's otlpjsonfile receiver reads the gunzipped file",
}


@dataclass(frozen=True)
class SpanFiles:
    """Paths relative to the run directory; ``scenarios`` is aligned with the records."""

    otlp: str = OTLP_FILE
    jaeger: str = JAEGER_FILE
    scenarios: list[str] = field(default_factory=list)


def all_spans(scenarios: Iterable[ScenarioRecord]) -> list[SpanRecord]:
    """Every scenario's spans, each span once (scenarios sharing a collector may overlap)."""
    seen: dict[tuple[str, str], SpanRecord] = {}
    for record in scenarios:
        for span in record.spans:
            seen.setdefault((span.trace_id, span.span_id), span)
    return list(seen.values())


def scenario_file_stem(index: int, record: ScenarioRecord) -> str:
    """``01-test_worker_sigkill_mid_job``: ordered, unique within the run, filesystem-safe."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in record.name)[:100]
    return f"{index:02d}-{safe}"


def write_span_files(run_dir: Path, scenarios: list[ScenarioRecord]) -> SpanFiles:
    """Write the run's span files into ``run_dir``; return their relative paths."""
    spans = all_spans(scenarios)
    write_otlp_jsonl(spans, run_dir / OTLP_FILE)
    write_jaeger_json(spans, run_dir / JAEGER_FILE)
    folder = run_dir / SCENARIO_DIR
    shutil.rmtree(folder, ignore_errors=True)
    names = []
    for index, record in enumerate(scenarios, start=1):
        path = write_jaeger_json(record.spans, folder / f"{scenario_file_stem(index, record)}.json")
        if path.stat().st_size > UPLOAD_MAX_BYTES:
            path = _gzip(path)
        names.append(path.relative_to(run_dir).as_posix())
    return SpanFiles(scenarios=names)


def _gzip(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    with (
        open(path, "rb") as src,
        open(target, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
    ):
        shutil.copyfileobj(src, out, 1 << 20)
    path.unlink()
    return target
