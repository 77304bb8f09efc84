"""OTLP ``AnyValue`` / ``KeyValue`` lists to and from plain Python values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def from_any_value(value: AnyValue) -> Any:
    """The Python value of an ``AnyValue`` (kvlist → dict, array → list, empty → None)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return value.bytes_value
    if which == "array_value":
        return [from_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    return None


def attributes_dict(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    """A ``KeyValue`` list as a dict (a later duplicate key wins)."""
    return {kv.key: from_any_value(kv.value) for kv in key_values}


def to_any_value(value: Any) -> AnyValue:
    """An ``AnyValue`` for a Python value; unknown types are sent as their ``str``."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):  # before int: bool is an int
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes | bytearray):
        return AnyValue(bytes_value=bytes(value))
    if isinstance(value, list | tuple):
        any_value = AnyValue()
        any_value.array_value.values.extend(to_any_value(v) for v in value)
        return any_value
    if isinstance(value, Mapping):
        any_value = AnyValue()
        any_value.kvlist_value.values.extend(key_values(value))
        return any_value
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    """A dict as an OTLP ``KeyValue`` list."""
    return [KeyValue(key=str(k), value=to_any_value(v)) for k, v in attributes.items()]
