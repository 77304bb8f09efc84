"""Prometheus text for ``/metrics``: upstream's proxy byte counters and process metrics."""

from __future__ import annotations

import resource
import sys
import time
from collections import defaultdict

import psutil

_PROXY_HELP = {
    "toxiproxy_proxy_received_bytes_total": "The total bytes received from a proxy",
    "toxiproxy_proxy_sent_bytes_total": "The total bytes sent to a proxy",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters are added to when a link ends, not while data flows (like upstream)."""

    def __init__(self, proxy_metrics: bool = False, runtime_metrics: bool = False) -> None:
        self.proxy_metrics = proxy_metrics
        self.runtime_metrics = runtime_metrics
        self._counters: dict[str, dict[tuple[str, str, str, str], int]] = {
            name: defaultdict(int) for name in _PROXY_HELP
        }
        self._started = time.time()

    @property
    def enabled(self) -> bool:
        return self.proxy_metrics or self.runtime_metrics

    def record(
        self, proxy: str, listener: str, upstream: str, direction: str, received: int, sent: int
    ) -> None:
        if not self.proxy_metrics:
            return
        key = (direction, listener, proxy, upstream)
        self._counters["toxiproxy_proxy_received_bytes_total"][key] += received
        self._counters["toxiproxy_proxy_sent_bytes_total"][key] += sent

    def render(self) -> str:
        lines: list[str] = []
        if self.proxy_metrics:
            for name, help_text in _PROXY_HELP.items():
                series = self._counters[name]
                if not series:
                    continue
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                for (direction, listener, proxy, upstream), value in sorted(series.items()):
                    labels = (
                        f'direction="{_escape(direction)}",listener="{_escape(listener)}",'
                        f'proxy="{_escape(proxy)}",upstream="{_escape(upstream)}"'
                    )
                    lines.append(f"{name}{{{labels}}} {value}")
        if self.runtime_metrics:
            lines += self._runtime()
        return "".join(line + "\n" for line in lines)

    def _runtime(self) -> list[str]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        try:
            fds = psutil.Process().num_fds()
        except psutil.Error:
            fds = -1
        version = sys.version_info
        return [
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {usage.ru_utime + usage.ru_stime}",
            "# HELP process_max_resident_memory_bytes Peak resident memory size in bytes.",
            "# TYPE process_max_resident_memory_bytes gauge",
            f"process_max_resident_memory_bytes {usage.ru_maxrss * 1024}",
            "# HELP process_open_fds Number of open file descriptors.",
            "# TYPE process_open_fds gauge",
            f"process_open_fds {fds}",
            "# HELP process_start_time_seconds Start time of the process since unix epoch.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self._started}",
            "# HELP python_info Python platform information.",
            "# TYPE python_info gauge",
            f'python_info{{implementation="{sys.implementation.name}",'
            f'version="{version.major}.{version.minor}.{version.micro}"}} 1',
        ]
