"""A proxy's toxics, in two chains, applied live to every open link."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.proxy import errors
from harness.proxy.errors import ApiError
from harness.proxy.gojson import (
    GoJsonError,
    GoKind,
    Obj,
    decode_struct,
    get_field,
    loads,
    type_error,
)
from harness.proxy.toxics import REGISTRY, Toxic, ToxicWrapper
from harness.proxy.toxics.wrapper import Direction

if TYPE_CHECKING:
    from harness.proxy.connection import Connection

_WRAPPER_FIELDS: dict[str, GoKind] = {
    "name": "string",
    "type": "string",
    "stream": "string",
    "toxicity": "float32",
}


def _decode(body: bytes) -> Any:
    try:
        return loads(body)
    except GoJsonError as exc:
        raise errors.bad_request(str(exc)) from None


def _decode_attributes(toxic: Toxic, document: Any, current: dict[str, int]) -> dict[str, int]:
    """Merge the document's ``attributes`` over ``current`` with Go's typing rules."""
    merged = dict(current)
    if isinstance(document, Obj):
        found, value = get_field(document, "attributes")
        if found and value is not None:
            if not isinstance(value, Obj):  # only reachable on update (add checks first)
                raise errors.bad_request(
                    str(type_error(value, "", "attributes", f"toxics.{toxic.go_struct}"))
                )
            try:
                merged.update(
                    decode_struct(
                        value,
                        toxic.fields,
                        toxic.go_struct,
                        f"toxics.{toxic.go_struct}",
                        prefix="attributes.",
                    )
                )
            except GoJsonError as exc:
                raise errors.bad_request(str(exc)) from None
    return merged


class ToxicCollection:
    def __init__(self) -> None:
        self.chains: dict[Direction, list[ToxicWrapper]] = {"upstream": [], "downstream": []}
        self.connections: set[Connection] = set()

    def chain(self, direction: Direction) -> list[ToxicWrapper]:
        return list(self.chains[direction])

    def all(self) -> list[ToxicWrapper]:
        return self.chains["upstream"] + self.chains["downstream"]

    def find(self, name: str) -> ToxicWrapper:
        for wrapper in self.all():
            if wrapper.name == name:
                return wrapper
        raise ApiError(errors.TOXIC_NOT_FOUND, 404)

    def attach(self, connection: Connection) -> None:
        self.connections.add(connection)

    def detach(self, connection: Connection) -> None:
        self.connections.discard(connection)

    def _links(self, direction: Direction) -> list[Any]:
        return [
            link
            for connection in self.connections
            for link in connection.links
            if link.direction == direction
        ]

    # -- API operations ------------------------------------------------------------
    def add_json(self, body: bytes) -> ToxicWrapper:
        document = _decode(body)
        try:
            fields = decode_struct(document, _WRAPPER_FIELDS, "ToxicWrapper", "toxics.ToxicWrapper")
            if isinstance(document, Obj):
                found, attributes = get_field(document, "attributes")
                if found and attributes is not None and not isinstance(attributes, Obj):
                    raise type_error(attributes, "ToxicWrapper", "attributes", "toxics.NoopToxic")
        except GoJsonError as exc:
            raise errors.bad_request(str(exc)) from None
        stream = str(fields.get("stream", "downstream"))
        direction: Direction
        if stream.lower() == "downstream":
            direction = "downstream"
        elif stream.lower() == "upstream":
            direction = "upstream"
        else:
            raise ApiError(errors.INVALID_STREAM, 400)
        toxic_type = str(fields.get("type", ""))
        name = str(fields.get("name", "")) or f"{toxic_type}_{stream}"
        cls = REGISTRY.get(toxic_type)
        if cls is None:
            raise ApiError(errors.INVALID_TOXIC_TYPE, 400)
        if any(wrapper.name == name for wrapper in self.all()):
            raise ApiError(errors.TOXIC_EXISTS, 409)
        toxic = cls()
        toxic.attrs = _decode_attributes(toxic, document, toxic.attrs)
        toxicity = fields.get("toxicity", 1.0)
        wrapper = ToxicWrapper(name, toxic_type, stream, direction, float(toxicity), toxic)
        self.chains[direction].append(wrapper)
        for link in self._links(direction):
            link.add(wrapper)
        return wrapper

    def update_json(self, name: str, body: bytes) -> ToxicWrapper:
        wrapper = self.find(name)
        document = _decode(body)
        try:
            fields = decode_struct(document, {"toxicity": "float32"}, "", "struct")
        except GoJsonError as exc:
            raise errors.bad_request(str(exc)) from None
        attrs = _decode_attributes(wrapper.toxic, document, wrapper.toxic.attrs)
        wrapper.toxic.attrs = attrs
        if "toxicity" in fields:
            wrapper.toxicity = float(fields["toxicity"])
        for link in self._links(wrapper.direction):
            link.update(wrapper)
        return wrapper

    def remove(self, name: str) -> None:
        wrapper = self.find(name)
        self.chains[wrapper.direction].remove(wrapper)
        for link in self._links(wrapper.direction):
            link.remove(wrapper)

    def reset(self) -> None:
        for wrapper in self.all():
            self.remove(wrapper.name)

    def to_json(self) -> list[dict[str, Any]]:
        return [wrapper.to_json() for wrapper in self.all()]
