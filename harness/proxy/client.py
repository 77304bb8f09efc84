"""A typed client for any Toxiproxy 2.x server: its HTTP API over one ``httpx`` client.

(``toxiproxy-python`` keeps the server's host and port in class-level globals, which
forced a process-wide lock around every call, and turns a failed proxy creation into
``KeyError: 'name'``; it is no longer used.)

Every fault has a heal that runs in ``finally``::

    with proxy.toxic("latency", latency=200):
        ...
    with proxy.down():
        ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness.proxy.errors import ToxiproxyError


@dataclass(frozen=True)
class ToxicInfo:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=dict(data.get("attributes") or {}),
        )


class ToxiproxyClient:
    """A Toxiproxy server at ``url`` (``http://127.0.0.1:8474``)."""

    def __init__(self, url: str = "http://127.0.0.1:8474", *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ToxiproxyError(
                f"Toxiproxy URL {url!r} is not of the form http://host:port; "
                "fix NOTEPIPE_TOXIPROXY_URL or the URL you passed"
            )
        self.url = url.rstrip("/")
        self.host: str = parts.hostname
        self.port: int = parts.port
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, action: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(
                f"{action} failed: cannot reach Toxiproxy at {self.url} ({exc}); "
                "is the server running?"
            ) from exc
        if response.status_code >= 400:
            raise ToxiproxyError(
                f"{action} failed: HTTP {response.status_code}: {response.text.strip()}"
            )
        return response

    # -- server ----------------------------------------------------------------------
    def running(self) -> bool:
        try:
            return self._http.get("/version").status_code == 200
        except httpx.HTTPError:
            return False

    def version(self) -> str:
        return self._request("GET", "/version", "reading the version").text

    def proxies(self) -> dict[str, ProxyHandle]:
        found = self._request("GET", "/proxies", "listing proxies").json()
        return {name: ProxyHandle.from_json(self, data) for name, data in found.items()}

    def get_proxy(self, name: str) -> ProxyHandle:
        data = self._request("GET", f"/proxies/{name}", f"getting proxy {name!r}").json()
        return ProxyHandle.from_json(self, data)

    def create_proxy(
        self, name: str, upstream: str, *, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> ProxyHandle:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        response = self._request(
            "POST", "/proxies", f"creating proxy {name!r} → {upstream}", json=body
        )
        return ProxyHandle.from_json(self, response.json())

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._request("POST", "/reset", "resetting")

    def destroy_all(self) -> None:
        for handle in self.proxies().values():
            handle.delete()


class ProxyHandle:
    """One proxy; ``listen_host``/``listen_port`` are where clients connect."""

    def __init__(
        self, client: ToxiproxyClient, name: str, upstream: str, listen: str, enabled: bool
    ) -> None:
        self.client = client
        self.name = name
        self.upstream = upstream
        self.listen = listen
        self.enabled = enabled

    @classmethod
    def from_json(cls, client: ToxiproxyClient, data: Mapping[str, Any]) -> ProxyHandle:
        return cls(
            client,
            str(data["name"]),
            str(data["upstream"]),
            str(data["listen"]),
            bool(data["enabled"]),
        )

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<ProxyHandle {self.name} {self.listen} → {self.upstream} {state}>"

    @property
    def listen_host(self) -> str:
        host = self.listen.rpartition(":")[0].strip("[]")
        return "127.0.0.1" if host in ("", "::", "0.0.0.0") else host

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def _path(self, *parts: str) -> str:
        return "/".join(["/proxies", self.name, *parts])

    def refresh(self) -> ProxyHandle:
        fresh = self.client.get_proxy(self.name)
        self.upstream, self.listen, self.enabled = fresh.upstream, fresh.listen, fresh.enabled
        return self

    # -- toxics ----------------------------------------------------------------------
    def toxics(self) -> list[ToxicInfo]:
        response = self.client._request("GET", self._path("toxics"), "listing toxics")
        return [ToxicInfo.from_json(item) for item in response.json()]

    def add_toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, int] | None = None,
    ) -> ToxicInfo:
        toxic_name = name or f"{type}_{stream}"
        body = {
            "name": toxic_name,
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        response = self.client._request(
            "POST", self._path("toxics"), f"adding toxic {toxic_name!r} to {self.name!r}", json=body
        )
        return ToxicInfo.from_json(response.json())

    def update_toxic(
        self,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, int] | None = None,
    ) -> ToxicInfo:
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = self._path("toxics", name)
        response = self.client._request("POST", path, f"updating toxic {name!r}", json=body)
        return ToxicInfo.from_json(response.json())

    def remove_toxic(self, name: str) -> None:
        self.client._request(
            "DELETE", self._path("toxics", name), f"removing toxic {name!r} from {self.name!r}"
        )

    @contextmanager
    def toxic(
        self,
        type: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Iterator[ToxicInfo]:
        """Add a toxic for the duration of the block; it is removed in ``finally``."""
        info = self.add_toxic(
            type, name=name, stream=stream, toxicity=toxicity, attributes=attributes
        )
        try:
            yield info
        finally:
            self.remove_toxic(info.name)

    # -- the proxy itself --------------------------------------------------------------
    def _set_enabled(self, enabled: bool) -> None:
        action = f"{'enabling' if enabled else 'disabling'} {self.name!r}"
        self.client._request("POST", self._path(), action, json={"enabled": enabled})
        self.enabled = enabled

    def disable(self) -> None:
        """Refuse new connections and close open ones (``enabled=false``)."""
        self._set_enabled(False)

    def enable(self) -> None:
        self._set_enabled(True)

    @contextmanager
    def down(self) -> Iterator[ProxyHandle]:
        """The proxy is down for the block and enabled again in ``finally``."""
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    def delete(self) -> None:
        self.client._request("DELETE", self._path(), f"deleting {self.name!r}")
