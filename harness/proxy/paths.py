"""``ToxiproxyPath``: a proxy in front of one service, as the stack's ``NetworkPath``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.proxy.client import ProxyHandle
from harness.proxy.launcher import ToxiproxyServer


class ToxiproxyPath:
    """Pipeline processes reach a service through this proxy; faults are toxics on it."""

    def __init__(self, handle: ProxyHandle) -> None:
        self.handle = handle

    @classmethod
    def create(cls, server: ToxiproxyServer, name: str, upstream: str) -> ToxiproxyPath:
        return cls(server.create_proxy(name, upstream))

    def __repr__(self) -> str:
        return f"<ToxiproxyPath {self.handle!r}>"

    @property
    def name(self) -> str:
        return self.handle.name

    @property
    def listen_host(self) -> str:
        return self.handle.listen_host

    @property
    def listen_port(self) -> int:
        return self.handle.listen_port

    def disable(self) -> None:
        self.handle.disable()

    def enable(self) -> None:
        self.handle.enable()

    def add_toxic(
        self, *, name: str, type: str, stream: str, toxicity: float, attributes: Mapping[str, Any]
    ) -> None:
        self.handle.add_toxic(
            type, name=name, stream=stream, toxicity=toxicity, attributes=dict(attributes)
        )

    def remove_toxic(self, name: str) -> None:
        self.handle.remove_toxic(name)

    def delete(self) -> None:
        self.handle.delete()
