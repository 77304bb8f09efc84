"""The real Jaeger (v2, built from its Go module) as a harness process.

:func:`find_jaeger` looks for the binary: the explicit path (``--notepipe-jaeger-bin``
or ``NOTEPIPE_JAEGER_BIN``), then the checkout's ``.peers/bin/jaeger`` (built by
``scripts/peers.sh``), then ``jaeger`` on PATH. :class:`JaegerServer` starts it with
the project's own minimal configuration (:func:`jaeger_config`): in-memory storage,
the OTLP/HTTP receiver and the HTTP query API on free loopback ports, the query
service's gRPC API on a loopback port too (Jaeger always opens it), no other
receivers, no self-tracing, no metrics port. It runs through :mod:`harness.reaper`
(own process group, killed at exit like every other process the harness starts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness import peers, reaper
from harness.errors import HarnessConfigError, ServiceStartError
from harness.services.ports import LOOPBACK, free_port
from harness.wait import wait_until

ENV_BINARY = "NOTEPIPE_JAEGER_BIN"
#: The in-memory store keeps at most this many traces (one run writes a few thousand).
MAX_TRACES = 200_000
_PORT_TAKEN = "address already in use"
#: The Collector logs this once every receiver and extension started.
_READY_LINE = "Everything is ready"


def jaeger_version(binary: Path) -> str:
    """The ``github.com/jaegertracing/jaeger`` module version in ``binary``'s build info (a
    binary built with ``go build`` reports an empty ``jaeger version``)."""
    try:
        data = binary.read_bytes()
    except OSError:
        return "unknown"
    found = re.search(rb"\n(?:dep|mod)\tgithub\.com/jaegertracing/jaeger\t(v[^\t\n]+)", data)
    return found.group(1).decode() if found else "unknown"


class JaegerNotFound(HarnessConfigError):
    """No Jaeger binary where the harness looks."""


def find_jaeger(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The Jaeger binary: ``explicit``, ``$NOTEPIPE_JAEGER_BIN``, the built peers
    (``.peers/bin/jaeger`` or ``$NOTEPIPE_PEERS_DIR/jaeger``), ``jaeger`` on PATH."""
    env = os.environ if env is None else env
    tried: list[str] = []
    for label, candidate in (
        ("--notepipe-jaeger-bin", explicit),
        (f"${ENV_BINARY}", env.get(ENV_BINARY)),
    ):
        if candidate:
            path = Path(candidate).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path.resolve()
            raise JaegerNotFound(
                f"{label} names {candidate}, which is not an executable file; build Jaeger with "
                "`make peers` (scripts/peers.sh, needs Go) or fix the path"
            )
        tried.append(f"{label} (not set)")
    built = peers.peer_binary(peers.JAEGER, env)
    if built is not None:
        return built
    tried.append(f"{peers.peers_dir(env) / peers.JAEGER} (missing)")
    on_path = shutil.which("jaeger", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    tried.append("`jaeger` on PATH (none)")
    raise JaegerNotFound(
        "no Jaeger binary found; tried " + ", ".join(tried) + ". Build it with `make peers` "
        "(scripts/peers.sh builds github.com/jaegertracing/jaeger/cmd/jaeger into .peers/bin; "
        "needs Go), or send spans to a Jaeger of your own with --notepipe-jaeger-endpoint URL"
    )


@dataclass(frozen=True)
class JaegerPorts:
    otlp_http: int
    query_http: int
    query_grpc: int

    @classmethod
    def free(cls) -> JaegerPorts:
        return cls(free_port(), free_port(), free_port())


def jaeger_config(ports: JaegerPorts, *, max_traces: int = MAX_TRACES) -> dict[str, Any]:
    """The Collector configuration for Jaeger v2: OTLP/HTTP in, memory store, query API.

    Adapted from jaegertracing/jaeger ``cmd/jaeger/internal/all-in-one.yaml`` (v1.76.0):
    no gRPC/Jaeger/Zipkin receivers, no batch processor (a POST returns once its spans
    are stored), no sampling, health, expvar or zpages extensions, metrics off.
    """
    store = "notepipe_memory"
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {"level": "none"},
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "jaeger_storage": {"backends": {store: {"memory": {"max_traces": max_traces}}}},
            "jaeger_query": {
                "storage": {"traces": store},
                "enable_tracing": False,
                "http": {"endpoint": f"{LOOPBACK}:{ports.query_http}"},
                "grpc": {"endpoint": f"{LOOPBACK}:{ports.query_grpc}"},
            },
        },
        "receivers": {
            "otlp": {"protocols": {"http": {"endpoint": f"{LOOPBACK}:{ports.otlp_http}"}}}
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": store}},
    }


class JaegerServer:
    """A started Jaeger: ``otlp_endpoint`` takes spans, ``query_url`` answers ``/api/…``."""

    def __init__(
        self,
        binary: Path | None = None,
        *,
        workdir: Path | None = None,
        max_traces: int = MAX_TRACES,
        ready_timeout: float = 30.0,
    ) -> None:
        self.binary = binary or find_jaeger()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="notepipe-jaeger-"))
        self.max_traces = max_traces
        self.ready_timeout = ready_timeout
        self.ports = JaegerPorts.free()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "jaeger.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "jaeger-config.yaml"

    @property
    def otlp_endpoint(self) -> str:
        """OTLP/HTTP base URL (POST ``/v1/traces``), e.g. for ``--notepipe-jaeger-endpoint``."""
        return f"http://{LOOPBACK}:{self.ports.otlp_http}"

    @property
    def query_url(self) -> str:
        """Base URL of the HTTP query API (``/api/traces/{id}``, ``/api/services``)."""
        return f"http://{LOOPBACK}:{self.ports.query_http}"

    def version(self) -> str:
        """The Jaeger module version recorded in the binary's Go build info (``v1.76.0``)."""
        return jaeger_version(self.binary)

    def start(self) -> JaegerServer:
        """Start Jaeger and wait until both APIs answer; retries if a port was taken."""
        for attempt in range(3):
            try:
                self._start_once()
            except ServiceStartError:
                if attempt < 2 and _PORT_TAKEN in self.logs():
                    self.ports = JaegerPorts.free()
                    continue
                raise
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = jaeger_config(self.ports, max_traces=self.max_traces)
        # JSON is YAML: the Collector's file provider reads it as it is.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        self.log_path.write_bytes(b"")
        cmd = [str(self.binary), "--config", str(self.config_path)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.proc = reaper.spawn(cmd, env=env, cwd=self.workdir, log_path=self.log_path)
        try:
            wait_until(
                self._ready,
                self.ready_timeout,
                describe=f"Jaeger ({self.binary}) to answer on {self.query_url}",
                transient=(httpx.HTTPError,),
            )
        except BaseException as exc:
            self.stop()
            if isinstance(exc, ServiceStartError):
                raise
            raise ServiceStartError(
                f"Jaeger did not become ready within {self.ready_timeout:.0f} s: {exc}\n"
                f"--- {self.log_path} (tail) ---\n{self.logs()}\n"
                "Hint: run the same command by hand: " + " ".join(cmd)
            ) from exc

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServiceStartError(
                f"Jaeger exited with code {self.proc.returncode} before it was ready.\n"
                f"--- {self.log_path} (tail) ---\n{self.logs()}"
            )
        # Its own log first: another process on the same ports would answer the probes.
        if _READY_LINE not in self.log_path.read_text(errors="replace"):
            return False
        with httpx.Client(timeout=2, trust_env=False) as client:
            if client.get(f"{self.query_url}/api/services").status_code != 200:
                return False
            # An empty export request: 200 once the OTLP receiver is listening.
            response = client.post(
                f"{self.otlp_endpoint}/v1/traces",
                content=b"{}",
                headers={"Content-Type": "application/json"},
            )
            return response.status_code == 200

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.proc is not None:
            reaper.terminate(self.proc, sig=signal.SIGTERM, grace=5.0)
            self.proc = None

    def logs(self, tail: int = 40) -> str:
        return reaper.log_tail(self.log_path, tail)

    def __enter__(self) -> JaegerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
