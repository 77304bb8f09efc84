"""JSON the way Go's encoding/json reads and writes it, for a drop-in Toxiproxy API.

Decoding keeps what Go needs and Python's ``json`` drops: object key order and
duplicates (last one wins), case-insensitive key matching, and the literal text of
numbers (``1.0`` or ``1e3`` is not an int64 in Go). Type mismatches produce Go's
``json: cannot unmarshal …`` messages. Encoding prints compact JSON, escapes
``<``, ``>`` and ``&`` like Go, and formats float32 values with Go's shortest form.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from harness.proxy.goscan import GoSyntaxError, scan_first_value

GoKind = Literal["int64", "int", "float32", "string", "bool"]

_INT_RE = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Num:
    """A JSON number with its literal text."""

    text: str


class Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs, in document order."""


@dataclass(frozen=True)
class Raw:
    """Text emitted verbatim by :func:`dumps`."""

    text: str


class GoJsonError(ValueError):
    """Decoding failed; ``str(error)`` is Go's message (without ``bad request body:``)."""


_decoder = json.JSONDecoder(object_pairs_hook=Obj, parse_int=Num, parse_float=Num, strict=True)


def loads(body: bytes) -> Any:
    """Decode the first JSON value of ``body`` like ``json.NewDecoder(r).Decode``: Go's
    scanner finds the value (and words a syntax error), Python's ``json`` reads it."""
    try:
        start, end = scan_first_value(body)
    except GoSyntaxError as exc:
        raise GoJsonError(str(exc)) from None
    text = body[start:end].decode("utf-8", errors="replace")
    try:
        return _decoder.decode(text)
    except RecursionError:
        raise GoJsonError("exceeded max depth") from None


def describe(value: Any) -> str:
    """Go's name for the JSON kind of ``value`` in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Num):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Obj):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def type_error(value: Any, struct_name: str, path: str, go_type: str) -> GoJsonError:
    kind = describe(value)
    return GoJsonError(
        f"json: cannot unmarshal {kind} into Go struct field {struct_name}.{path} of type {go_type}"
    )


def convert(value: Any, kind: GoKind, struct_name: str, path: str) -> Any:
    """Convert one decoded JSON value to a Go field of ``kind``, or raise Go's error."""
    if kind in ("int64", "int"):
        if isinstance(value, Num):
            if _INT_RE.match(value.text):
                number = int(value.text)
                if _INT64_MIN <= number <= _INT64_MAX:
                    return number
            raise GoJsonError(
                f"json: cannot unmarshal number {value.text} into Go struct field "
                f"{struct_name}.{path} of type {kind}"
            )
        raise type_error(value, struct_name, path, kind)
    if kind == "float32":
        if isinstance(value, Num):
            real = float(value.text)
            if abs(real) <= _FLOAT32_MAX:
                return struct.unpack("f", struct.pack("f", real))[0]
            raise GoJsonError(
                f"json: cannot unmarshal number {value.text} into Go struct field "
                f"{struct_name}.{path} of type float32"
            )
        raise type_error(value, struct_name, path, kind)
    if kind == "string":
        if isinstance(value, str):
            return value
        raise type_error(value, struct_name, path, kind)
    if isinstance(value, bool):
        return value
    raise type_error(value, struct_name, path, kind)


def match_field(key: str, names: Mapping[str, object]) -> str | None:
    """Go's field matching: an exact key first, else a case-insensitive one."""
    if key in names:
        return key
    folded = key.casefold()
    for name in names:
        if name.casefold() == folded:
            return name
    return None


def decode_struct(
    value: Any,
    fields: Mapping[str, GoKind],
    struct_name: str,
    go_type: str,
    prefix: str = "",
) -> dict[str, Any]:
    """Decode a JSON object into the named ``fields``; absent and null fields are left out."""
    if value is None:
        return {}
    if not isinstance(value, Obj):
        raise GoJsonError(
            f"json: cannot unmarshal {describe(value)} into Go value of type {go_type}"
        )
    out: dict[str, Any] = {}
    for key, item in value:
        name = match_field(key, fields)
        if name is None or item is None:
            continue
        out[name] = convert(item, fields[name], struct_name, prefix + name)
    return out


def get_field(value: Obj, name: str) -> tuple[bool, Any]:
    """The last value whose key matches ``name`` (Go semantics), and whether there was one."""
    found, result = False, None
    for key, item in value:
        if match_field(key, {name: None}) is not None:
            found, result = True, item
    return found, result


def format_float32(value: float) -> str:
    """Format a float32 the way Go's encoding/json does (``1``, ``0.5``, ``1e-07``)."""
    f32 = struct.unpack("f", struct.pack("f", value))[0]
    text = repr(f32)
    for digits in range(1, 10):
        candidate = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == f32:
            text = candidate
            break
    magnitude = abs(f32)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        formatted = format(Decimal(text), "f")
        if "." in formatted:
            formatted = formatted.rstrip("0").rstrip(".")
        return "-0" if formatted in ("-0", "-0.0") else formatted
    mantissa, _, exponent = f"{float(text):e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exponent.lstrip('+-')):02d}"


def _escape(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return (
        encoded.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def dumps(value: Any) -> str:
    """Compact JSON like Go's ``json.Marshal``; dict order is kept (Go struct order)."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_escape(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
