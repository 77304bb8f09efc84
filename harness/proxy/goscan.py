"""Go's ``encoding/json`` scanner, for its exact syntax-error messages.

``json.NewDecoder(r).Decode(v)`` reads one value and ignores what follows; a syntax
error reads ``invalid character 'x' looking for beginning of value`` and the like,
in words Python's ``json`` does not use. :func:`scan_first_value` walks the bytes
with the same states as Go's scanner.go and returns where the first value ends or
the error Go would report (found by the differential test against the real server).
"""

from __future__ import annotations

import unicodedata

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'bfnrt\\/"'
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}
_GO_ESCAPES = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
MAX_DEPTH = 10000


class GoSyntaxError(ValueError):
    """``str(error)`` is Go's message: ``invalid character …``, ``unexpected EOF``, ``EOF``."""


def quote_char(byte: int) -> str:
    """Go's ``quoteChar``: the byte as a rune, quoted with ``strconv.Quote`` in '…'."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    char = chr(byte)
    if byte in _GO_ESCAPES:
        text = _GO_ESCAPES[byte]
    elif byte == ord("\\"):
        text = "\\\\"
    elif byte < 0x20 or byte == 0x7F:
        text = f"\\x{byte:02x}"
    elif byte < 0x80 or (char.isprintable() and unicodedata.category(char) != "Zs"):
        text = char
    else:
        text = f"\\u{byte:04x}"
    return f"'{text}'"


def _error(byte: int, context: str) -> GoSyntaxError:
    return GoSyntaxError(f"invalid character {quote_char(byte)} {context}")


class _Scanner:
    """Go's scanner states, one method per state family; ``stack`` holds the open
    containers ("key", "value" inside an object, "array")."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.stack: list[str] = []

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise GoSyntaxError("unexpected EOF")
        return self.data[self.pos]

    def skip_space(self) -> int:
        while self.byte() in _SPACE:
            self.pos += 1
        return self.byte()

    def value(self) -> int:
        """Scan one value from ``pos``; return the offset just past it."""
        while True:
            c = self.skip_space()
            if c == ord("{"):
                if not self.open_container(ord("}"), "key"):
                    self.key()
                    continue
            elif c == ord("["):
                if not self.open_container(ord("]"), "array"):
                    continue
            elif c == ord('"'):
                self.pos += 1
                self.string()
            elif c == ord("-") or c in _DIGITS:
                self.number()
            elif c in _LITERALS:
                self.literal(_LITERALS[c])
            else:
                raise _error(c, "looking for beginning of value")
            if self.end_value():
                return self.pos

    def open_container(self, close: int, state: str) -> bool:
        """Past ``{`` or ``[``: True if it closes at once (empty), else ``state`` is pushed."""
        self.pos += 1
        if len(self.stack) >= MAX_DEPTH:
            raise GoSyntaxError("exceeded max depth")
        if self.skip_space() == close:
            self.pos += 1
            return True
        self.stack.append(state)
        return False

    def key(self) -> None:
        c = self.skip_space()
        if c != ord('"'):
            raise _error(c, "looking for beginning of object key string")
        self.pos += 1
        self.string()
        c = self.skip_space()
        if c != ord(":"):
            raise _error(c, "after object key")
        self.pos += 1
        self.stack[-1] = "value"

    def end_value(self) -> bool:
        """After a value: close containers; True when the top-level value is complete."""
        while self.stack:
            c = self.skip_space()
            top = self.stack[-1]
            if top == "value":
                if c == ord(","):
                    self.pos += 1
                    self.stack[-1] = "key"
                    self.key()
                    return False
                if c != ord("}"):
                    raise _error(c, "after object key:value pair")
            elif c == ord(","):
                self.pos += 1
                return False
            elif c != ord("]"):
                raise _error(c, "after array element")
            self.pos += 1
            self.stack.pop()
        return True

    def string(self) -> None:
        while True:
            c = self.byte()
            self.pos += 1
            if c == ord('"'):
                return
            if c < 0x20:
                raise _error(c, "in string literal")
            if c == ord("\\"):
                c = self.byte()
                self.pos += 1
                if c == ord("u"):
                    for _ in range(4):
                        c = self.byte()
                        if c not in _HEX:
                            raise _error(c, "in \\u hexadecimal character escape")
                        self.pos += 1
                elif c not in _ESCAPES:
                    raise _error(c, "in string escape code")

    def digits(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _DIGITS:
            self.pos += 1

    def number(self) -> None:
        if self.byte() == ord("-"):
            self.pos += 1
            c = self.byte()
            if c not in _DIGITS:
                raise _error(c, "in numeric literal")
        if self.byte() == ord("0"):
            self.pos += 1
        else:
            self.digits()
        if self.pos < len(self.data) and self.data[self.pos] == ord("."):
            self.pos += 1
            c = self.byte()
            if c not in _DIGITS:
                raise _error(c, "after decimal point in numeric literal")
            self.digits()
        if self.pos < len(self.data) and self.data[self.pos] in b"eE":
            self.pos += 1
            if self.byte() in b"+-":
                self.pos += 1
            c = self.byte()
            if c not in _DIGITS:
                raise _error(c, "in exponent of numeric literal")
            self.digits()

    def literal(self, word: bytes) -> None:
        self.pos += 1
        for expected in word[1:]:
            c = self.byte()
            if c != expected:
                name = word.decode()
                raise _error(c, f"in literal {name} (expecting {quote_char(expected)})")
            self.pos += 1


def scan_first_value(data: bytes) -> tuple[int, int]:
    """(start, end) offsets of the first JSON value in ``data``, like Go's Decoder;
    raises :class:`GoSyntaxError` with Go's message (``EOF`` when there is none)."""
    start = 0
    while start < len(data) and data[start] in _SPACE:
        start += 1
    if start == len(data):
        raise GoSyntaxError("EOF")
    scanner = _Scanner(data)
    scanner.pos = start
    return start, scanner.value()
