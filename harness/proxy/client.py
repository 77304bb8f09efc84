"""A typed client for any Toxiproxy 2.x server, on top of ``toxiproxy-python``.

``toxiproxy-python`` 0.1.1 is used for what it covers (listing, toxics, enable and
disable, reset, delete); ``httpx`` for what it lacks or gets wrong (creating a
proxy, whose error it turns into ``KeyError: 'name'``, and updating a toxic).
Its host and port are class-level globals, so every call sets them first.

Every fault has a heal that runs in ``finally``::

    with proxy.toxic("latency", latency=200):
        ...
    with proxy.down():
        ...
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.proxy.errors import ToxiproxyError

_consumer_lock = threading.RLock()
_LIBRARY_ERRORS = (InvalidToxic, NotFound, ProxyExists)


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


def _detail(exc: Exception) -> str:
    body = exc.args[0] if exc.args else b""
    return body.decode(errors="replace").strip() if isinstance(body, bytes) else str(body)


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

    @contextmanager
    def _library(self, action: str) -> Iterator[Any]:
        """The ``toxiproxy.Toxiproxy`` API pointed at this server; library errors translated."""
        with _consumer_lock:
            server = toxiproxy.Toxiproxy()
            server.update_api_consumer(self.host, self.port)
            try:
                yield server
            except _LIBRARY_ERRORS as exc:
                raise ToxiproxyError(
                    f"{action} failed: {type(exc).__name__}: {_detail(exc)}"
                ) from exc
            except OSError as exc:
                raise ToxiproxyError(
                    f"{action} failed: cannot reach Toxiproxy at {self.url} ({exc}); "
                    "is the server running?"
                ) from exc

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
        with self._library("checking the server") as server:
            return bool(server.running())

    def version(self) -> str:
        with self._library("reading the version") as server:
            raw = server.version()
        if raw is None:
            raise ToxiproxyError(f"no Toxiproxy server listens at {self.url}")
        return bytes(raw).decode()

    def proxies(self) -> dict[str, ProxyHandle]:
        with self._library("listing proxies") as server:
            found = server.proxies()
        return {
            name: ProxyHandle(self, p.name, p.upstream, p.listen, p.enabled)
            for name, p in found.items()
        }

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
        with self._library("resetting") as server:
            server.reset()

    def destroy_all(self) -> None:
        with self._library("deleting all proxies") as server:
            server.destroy_all()


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

    def _library_proxy(self, server: Any) -> Any:
        return toxiproxy.Proxy(
            name=self.name, upstream=self.upstream, enabled=self.enabled, listen=self.listen
        )

    def refresh(self) -> ProxyHandle:
        fresh = self.client.get_proxy(self.name)
        self.upstream, self.listen, self.enabled = fresh.upstream, fresh.listen, fresh.enabled
        return self

    # -- toxics ----------------------------------------------------------------------
    def toxics(self) -> list[ToxicInfo]:
        response = self.client._request("GET", f"/proxies/{self.name}/toxics", "listing toxics")
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
        with self.client._library(f"adding toxic {toxic_name!r} to {self.name!r}") as server:
            self._library_proxy(server).add_toxic(
                type=type,
                name=toxic_name,
                stream=stream,
                toxicity=toxicity,
                attributes=dict(attributes or {}),
            )
        return ToxicInfo(toxic_name, type, stream, toxicity, dict(attributes or {}))

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
        path = f"/proxies/{self.name}/toxics/{name}"
        response = self.client._request("POST", path, f"updating toxic {name!r}", json=body)
        return ToxicInfo.from_json(response.json())

    def remove_toxic(self, name: str) -> None:
        with self.client._library(f"removing toxic {name!r} from {self.name!r}") as server:
            self._library_proxy(server).destroy_toxic(name)

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
    def disable(self) -> None:
        """Refuse new connections and close open ones (``enabled=false``)."""
        with self.client._library(f"disabling {self.name!r}") as server:
            self._library_proxy(server).disable()
        self.enabled = False

    def enable(self) -> None:
        with self.client._library(f"enabling {self.name!r}") as server:
            self._library_proxy(server).enable()
        self.enabled = True

    @contextmanager
    def down(self) -> Iterator[ProxyHandle]:
        """The proxy is down for the block and enabled again in ``finally``."""
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    def delete(self) -> None:
        with self.client._library(f"deleting {self.name!r}") as server:
            self._library_proxy(server).destroy()
