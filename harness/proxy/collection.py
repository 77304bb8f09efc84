"""All proxies of a server, keyed by name: create, replace (populate), delete, reset."""

from __future__ import annotations

from typing import Any

from harness.proxy import errors
from harness.proxy.errors import ApiError
from harness.proxy.gojson import (
    GoJsonError,
    GoKind,
    Obj,
    convert,
    decode_struct,
    describe,
    loads,
    match_field,
)
from harness.proxy.metrics import Metrics
from harness.proxy.proxy import Proxy

_PROXY_FIELDS: dict[str, GoKind] = {
    "name": "string",
    "listen": "string",
    "upstream": "string",
    "enabled": "bool",
}
_POPULATE_ITEM = 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'


class PopulateError(ApiError):
    """A populate failure; the proxies created before it are still reported."""

    def __init__(self, error: ApiError, created: list[Proxy]) -> None:
        super().__init__(error.message, error.status)
        self.created = created


def decode_proxy(body: bytes, defaults: dict[str, Any]) -> dict[str, Any]:
    try:
        return {**defaults, **decode_struct(loads(body), _PROXY_FIELDS, "Proxy", "toxiproxy.Proxy")}
    except GoJsonError as exc:
        raise errors.bad_request(str(exc)) from None


def _decode_populate_entry(item: Any) -> dict[str, Any]:
    """One /populate entry: the embedded Proxy's fields report as ``.Proxy.name``."""
    if item is None:
        return {}
    if not isinstance(item, Obj):
        raise GoJsonError(
            f"json: cannot unmarshal {describe(item)} into Go value of type {_POPULATE_ITEM}"
        )
    out: dict[str, Any] = {}
    for key, value in item:
        name = match_field(key, _PROXY_FIELDS)
        if name is None or value is None:
            continue
        path = name if name == "enabled" else f"Proxy.{name}"
        out[name] = convert(value, _PROXY_FIELDS[name], "", path)
    return out


class ProxyCollection:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(errors.PROXY_NOT_FOUND, 404)
        return proxy

    async def create_json(self, body: bytes) -> Proxy:
        fields = decode_proxy(body, {"enabled": True, "name": "", "listen": "", "upstream": ""})
        if not fields["name"]:
            raise errors.missing_field("name")
        if not fields["upstream"]:
            raise errors.missing_field("upstream")
        if fields["name"] in self.proxies:
            raise ApiError(errors.PROXY_EXISTS, 409)
        proxy = Proxy(fields["name"], fields["listen"], fields["upstream"], self.metrics)
        if fields["enabled"]:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def update_json(self, name: str, body: bytes) -> Proxy:
        proxy = self.get(name)
        defaults = {"listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled}
        fields = decode_proxy(body, defaults)
        await proxy.update(fields["listen"], fields["upstream"], fields["enabled"])
        return proxy

    def delete(self, name: str) -> None:
        proxy = self.get(name)
        proxy.stop()
        del self.proxies[name]

    async def populate_json(self, body: bytes) -> list[Proxy]:
        try:
            document = loads(body)
            if document is not None and (
                isinstance(document, Obj) or not isinstance(document, list)
            ):
                raise GoJsonError(
                    f"json: cannot unmarshal {describe(document)} into Go value of type "
                    f"[]{_POPULATE_ITEM}"
                )
            entries = [_decode_populate_entry(item) for item in document or []]
        except GoJsonError as exc:
            raise PopulateError(errors.bad_request(str(exc)), []) from None
        for index, entry in enumerate(entries, start=1):
            if not entry.get("name"):
                raise PopulateError(errors.missing_field(f"name at proxy {index}"), [])
            if not entry.get("upstream"):
                raise PopulateError(errors.missing_field(f"upstream at proxy {index}"), [])
        created: list[Proxy] = []
        for entry in entries:
            try:
                created.append(await self._add_or_replace(entry))
            except ApiError as exc:
                raise PopulateError(exc, created) from None
        return created

    async def _add_or_replace(self, entry: dict[str, Any]) -> Proxy:
        name, listen, upstream = entry["name"], entry.get("listen", ""), entry["upstream"]
        existing = self.proxies.get(name)
        if existing is not None:
            if not await existing.differs(listen, upstream):
                return existing
            existing.stop()
        proxy = Proxy(name, listen, upstream, self.metrics)
        if entry.get("enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def reset(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.toxics.reset()

    def stop_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
