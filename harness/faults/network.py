"""Network faults on the Toxiproxy proxy between the pipeline and a service.

Each probes *through the proxy* (where the pipeline connects) while the fault is on, so
the evidence does not depend on counters only the built-in server keeps: a cut path
refuses or drops the connection, ``reset_peer`` resets it, ``timeout`` black-holes it,
``latency`` delays the reply, ``slicer`` splits it and ``bandwidth`` slows it. After the
run, :func:`~harness.faults.witness.errors_in_window` adds the errors the pipeline and its
client saw in the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessConfigError
from harness.faults.base import FaultRun
from harness.faults.effect import Effect
from harness.faults.params import refuse_unknown
from harness.faults.probe import Endpoint, ProbeResult, probe
from harness.faults.service import ServiceFault
from harness.faults.witness import errors_in_window

if TYPE_CHECKING:
    pass

TOXIC_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
)


class NetworkFault(ServiceFault):
    """Base: probes through the proxy, and counts the errors seen in the window."""

    def proxied_endpoint(self) -> Endpoint:
        """Where the pipeline reaches the service: the proxy's port on the service's host
        (see ``PipelineStack.start``), with the service's password."""
        service = self.stack.service(self.spec.target)
        port = self.stack.proxy(self.spec.target).listen_port
        return Endpoint(self.spec.target, service.host, port, service.password)

    @classmethod
    def confirm(cls, effect: Effect, run: FaultRun) -> None:
        effect.note(
            errors_in_window=errors_in_window(run.history, run.client_ops, run.start, run.end)
        )


class ProxyDown(NetworkFault):
    """The network path to a service is cut (Toxiproxy ``enabled=false``): new connections
    are refused and open ones dropped. Misses if a probe through the proxy still gets an
    answer."""

    kind = "proxy_down"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        refuse_unknown(cls.kind, params, [])

    def inject(self) -> None:
        self.stack.proxy(self.spec.target).disable()
        result = probe(self.proxied_endpoint(), timeout=1.0)
        self.effect.note(probe=result.to_dict())
        if result.failed:
            self.effect.bit(f"path to {self.spec.target} cut: probe {result.outcome}")
        else:
            self.effect.miss("a probe through the disabled proxy still got an answer")

    def heal(self) -> None:
        self.stack.proxy(self.spec.target).enable()


#: How long a toxic's probe waits for the reply (s).
PROBE_TIMEOUT_S = 1.0
#: Reply size (bytes) for the probes of toxics that act on volume (Redis ``ECHO``).
VOLUME_PROBE_BYTES = 4096


class ProxyToxic(NetworkFault):
    """A Toxiproxy toxic on the path to a service: ``params`` = ``{"type": "latency",
    "attributes": {...}, "stream": "downstream", "toxicity": 1.0}``. A probe through the
    proxy must show the toxic's effect; where a probe cannot (``slow_close``,
    ``limit_data``, volume toxics on PostgreSQL, ``toxicity`` < 1) the toxic being in place
    is the evidence, and the record says so."""

    kind = "toxic"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        if params.get("type") not in TOXIC_TYPES:
            raise HarnessConfigError(
                f"toxic fault needs params.type in {', '.join(TOXIC_TYPES)}; "
                f"got {params.get('type')!r}"
            )
        refuse_unknown(cls.kind, params, ["type", "attributes", "stream", "toxicity"])

    def inject(self) -> None:
        params = dict(self.spec.params)
        self.toxic_name = f"{params['type']}_{self.rng.randrange(1 << 30):x}"
        self.stack.proxy(self.spec.target).add_toxic(
            name=self.toxic_name,
            type=str(params["type"]),
            stream=str(params.get("stream", "downstream")),
            toxicity=float(params.get("toxicity", 1.0)),
            attributes=dict(params.get("attributes", {})),
        )
        self.judge(at_heal=False)

    def judge(self, *, at_heal: bool) -> None:
        """Probe through the proxy for the toxic's effect. A probe that another fault on the
        same path masks (refused while the proxy is down; a failed reply where the toxic only
        degrades one) is tried again at heal; masked both times, the toxic hit nothing."""
        toxic = str(self.spec.params["type"])
        attributes = dict(self.spec.params.get("attributes", {}))
        endpoint = self.proxied_endpoint()
        volume = toxic in ("slicer", "bandwidth") and endpoint.service == "redis"
        expected = expected_effect(toxic, attributes)
        if float(self.spec.params.get("toxicity", 1.0)) < 1.0 or (expected is None and not volume):
            self.effect.bit(f"{toxic} toxic in place on {self.spec.target} (not probed)")
            return
        result = probe(
            endpoint, payload=VOLUME_PROBE_BYTES if volume else 0, timeout=PROBE_TIMEOUT_S
        )
        self.effect.note(**{"heal_probe" if at_heal else "probe": result.to_dict()})
        verdict = shows_effect(toxic, attributes, result)
        seen = f"{result.outcome}, {result.elapsed_s:.3f} s, {result.chunks} reads"
        if verdict is not None:
            when = " (at heal: masked by another fault at inject)" if at_heal else ""
            self.effect.bit(f"{toxic} on {self.spec.target}: {verdict}{when}")
        elif not at_heal and masked(toxic, result):
            self.effect.note(masked=f"the path already failed at inject ({seen})")
        else:
            self.effect.miss(f"a probe through the proxy showed no {toxic} ({seen})")

    def heal(self) -> None:
        try:
            if self.effect.hit is None:
                self.judge(at_heal=True)
        finally:
            self.stack.proxy(self.spec.target).remove_toxic(self.toxic_name)


def masked(toxic: str, result: ProbeResult) -> bool:
    """Did another fault on the path hide this toxic from the probe?"""
    if result.outcome == "refused":
        return True  # the proxy is disabled: nothing flows, no toxic can act
    degrades = toxic in ("latency", "slicer", "bandwidth")
    return degrades and result.failed


def expected_effect(toxic: str, attributes: Mapping[str, Any]) -> str | None:
    """What a probe should see, or ``None`` when a probe cannot show it."""
    if toxic == "latency":
        return "late" if float(attributes.get("latency", 0)) >= 20 else None
    if toxic == "reset_peer":
        return "reset"
    if toxic == "timeout":
        # timeout=0 holds the data forever; > 0 closes after that many ms.
        return (
            "silence"
            if float(attributes.get("timeout", 0)) in (0, 0.0)
            or float(attributes["timeout"]) < 2000
            else None
        )
    return None


def shows_effect(toxic: str, attributes: Mapping[str, Any], result: ProbeResult) -> str | None:
    """A description of the toxic's effect seen in ``result``, or ``None`` if absent."""
    if toxic == "latency":
        least = (float(attributes.get("latency", 0)) - float(attributes.get("jitter", 0))) / 1000
        if result.outcome == "ok" and result.elapsed_s >= 0.8 * least:
            return f"reply after {result.elapsed_s:.3f} s (latency {attributes.get('latency')} ms)"
        return None
    if toxic == "reset_peer":
        return f"connection {result.outcome}" if result.outcome in ("reset", "closed") else None
    if toxic == "timeout":
        if result.outcome in ("timeout", "closed") and result.received == 0:
            return f"no reply ({result.outcome} after {result.elapsed_s:.2f} s)"
        return None
    if toxic == "slicer":
        # A clean reply arrives in one read; sliced, in several (the real Toxiproxy also
        # delays each slice, so a 4 KB reply may not finish within the probe's timeout).
        sliced = result.outcome in ("ok", "timeout") and result.chunks > 1
        return f"reply in {result.chunks} slices" if sliced else None
    if toxic == "bandwidth":
        rate_kb = float(attributes.get("rate", 0)) or 1.0
        least = VOLUME_PROBE_BYTES / 1024 / rate_kb
        if result.outcome in ("ok", "timeout") and result.elapsed_s >= 0.5 * least:
            return f"{result.received} bytes took {result.elapsed_s:.3f} s (rate {rate_kb:g} KB/s)"
        return None
    return None
