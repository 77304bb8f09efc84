"""A toxic as the API sees it: name, type, stream, toxicity and its attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.proxy.gojson import Raw, format_float32
from harness.proxy.toxics.base import Toxic

Direction = Literal["upstream", "downstream"]


@dataclass
class ToxicWrapper:
    name: str
    type: str
    stream: str
    """As the client wrote it (upstream echoes the raw string, e.g. ``UpStream``)."""
    direction: Direction
    toxicity: float
    toxic: Toxic

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": self.toxic.attributes_json(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": Raw(format_float32(self.toxicity)),
        }
