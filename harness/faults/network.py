"""Network faults on the Toxiproxy proxy between the pipeline and a service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import HarnessConfigError
from harness.faults.service import ServiceFault

TOXIC_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
)


class ProxyDown(ServiceFault):
    """The network path to a service is cut (Toxiproxy ``enabled=false``)."""

    kind = "proxy_down"

    def inject(self) -> None:
        self.stack.proxy(self.spec.target).disable()

    def heal(self) -> None:
        self.stack.proxy(self.spec.target).enable()


class ProxyToxic(ServiceFault):
    """A Toxiproxy toxic on the path to a service: ``params`` = ``{"type": "latency",
    "attributes": {...}, "stream": "downstream", "toxicity": 1.0}``."""

    kind = "toxic"

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        if params.get("type") not in TOXIC_TYPES:
            raise HarnessConfigError(
                f"toxic fault needs params.type in {', '.join(TOXIC_TYPES)}; "
                f"got {params.get('type')!r}"
            )

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

    def heal(self) -> None:
        self.stack.proxy(self.spec.target).remove_toxic(self.toxic_name)
