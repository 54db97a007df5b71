"""Go ``encoding/json`` as the reference server shows it: decode errors and Marshal output.

The reference server decodes every request body with Go's ``json.Decoder`` into a Go
struct, and its error texts reach the client verbatim (``bad request body: <text>``,
spec §2). This module reproduces what a client can observe:

* only the first JSON value of a body is read; trailing bytes are ignored;
* syntax errors carry Go's scanner texts (``EOF``, ``unexpected EOF``,
  ``invalid character 'x' looking for beginning of value``, ...);
* keys match struct fields case-insensitively, unknown keys are ignored, ``null`` keeps
  the current value, and a value of the wrong type is an ``UnmarshalTypeError`` whose
  text names the Go struct, field path and type (the first such error is reported after
  the whole value was decoded, as Go does);
* output is compact, escapes ``<``, ``>``, ``&``, U+2028 and U+2029 like ``json.Marshal``,
  and prints float32 numbers in their shortest form.

Limits: only the Go types the Toxiproxy API uses are modelled (string, bool, int64/int,
float32, ``*bool``, structs, one slice type).
"""

from __future__ import annotations

import codecs
import json
import math
import struct
from dataclasses import dataclass, field

MAX_DEPTH = 10000  # Go's scanner refuses deeper nesting ("exceeded max depth")

_WS = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {
    ord('"'): '"',
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}


class Obj(list):
    """A JSON object as its (key, value) pairs in document order; keys may repeat."""


class Num(str):
    """A JSON number kept as its literal text: Go parses it per target type."""


class DecodeError(Exception):
    """A body that Go's decoder rejects; ``str(err)`` is Go's error text."""


def _replace_each_byte(err: UnicodeError) -> tuple[str, int]:
    # Go's decoder turns every invalid UTF-8 byte into one U+FFFD.
    if not isinstance(err, UnicodeDecodeError):  # registered for decoding only
        raise err
    return "\ufffd", err.start + 1


codecs.register_error("gojson-replace", _replace_each_byte)


# --------------------------------------------------------------------------- decoding


def quote_char(c: int) -> str:
    """Go's ``quoteChar``: how a byte is shown in a syntax error."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    named = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 0x5C: "\\\\"}
    if c in named:
        s = named[c]
    elif c < 0x20 or c == 0x7F:
        s = "\\x%02x" % c
    elif 0x80 <= c < 0xA0 or c == 0xAD:
        s = "\\u%04x" % c
    else:
        s = chr(c)
    return "'" + s + "'"


def _bad(c: int, context: str) -> DecodeError:
    return DecodeError(f"invalid character {quote_char(c)} {context}")


class _Reader:
    """Cursor over the body; every read past the end is Go's ``unexpected EOF``."""

    __slots__ = ("data", "i")

    def __init__(self, data: bytes):
        self.data = data
        self.i = 0

    def skip_ws(self) -> None:
        data, i, n = self.data, self.i, len(self.data)
        while i < n and data[i] in _WS:
            i += 1
        self.i = i

    def peek(self) -> int:
        if self.i >= len(self.data):
            raise DecodeError("unexpected EOF")
        return self.data[self.i]


def decode(data: bytes):
    """Decode the first JSON value of ``data`` as Go's ``json.Decoder`` would.

    Returns plain Python values, with objects as :class:`Obj` and numbers as
    :class:`Num`. Raises :class:`DecodeError` with Go's message.
    """
    r = _Reader(data)
    r.skip_ws()
    if r.i >= len(data):
        raise DecodeError("EOF")
    stack: list = []  # open containers, innermost last
    keys: list = []  # pending key of each open Obj
    while True:
        value, opened = _begin_value(r, stack, keys)
        if opened:
            continue
        while True:  # attach the finished value, then look for what follows it
            if not stack:
                return value
            parent = stack[-1]
            if isinstance(parent, Obj):
                parent.append((keys.pop(), value))
            else:
                parent.append(value)
            r.skip_ws()
            c = r.peek()
            r.i += 1
            if c == 0x2C:  # ','
                if isinstance(parent, Obj):
                    keys.append(_object_key(r))
                break
            if c == (0x7D if isinstance(parent, Obj) else 0x5D):  # '}' / ']'
                value = stack.pop()
                continue
            raise _bad(
                c,
                "after object key:value pair" if isinstance(parent, Obj) else "after array element",
            )


def _begin_value(r: _Reader, stack: list, keys: list):
    """Parse a scalar, or open a container; returns (value, opened_a_container)."""
    r.skip_ws()
    c = r.peek()
    if c == 0x7B or c == 0x5B:  # '{' '['
        if len(stack) >= MAX_DEPTH:
            raise DecodeError("exceeded max depth")
        r.i += 1
        r.skip_ws()
        close = 0x7D if c == 0x7B else 0x5D
        if r.peek() == close:
            r.i += 1
            return (Obj() if c == 0x7B else []), False
        stack.append(Obj() if c == 0x7B else [])
        if c == 0x7B:
            keys.append(_object_key(r))
        return None, True
    if c == 0x22:
        return _string(r), False
    if c == 0x2D or c in _DIGITS:
        return _number(r), False
    for word, value in ((b"true", True), (b"false", False), (b"null", None)):
        if c == word[0]:
            _literal(r, word)
            return value, False
    raise _bad(c, "looking for beginning of value")


def _object_key(r: _Reader) -> str:
    r.skip_ws()
    c = r.peek()
    if c != 0x22:
        raise _bad(c, "looking for beginning of object key string")
    key = _string(r)
    r.skip_ws()
    c = r.peek()
    if c != 0x3A:
        raise _bad(c, "after object key")
    r.i += 1
    return key


def _literal(r: _Reader, word: bytes) -> None:
    for k in range(1, len(word)):
        r.i += 1
        c = r.peek()
        if c != word[k]:
            raise _bad(c, f"in literal {word.decode()} (expecting {quote_char(word[k])})")
    r.i += 1


def _number(r: _Reader) -> Num:
    data, start = r.data, r.i
    n = len(data)
    i = start
    if data[i] == 0x2D:
        i += 1
        if i >= n:
            raise DecodeError("unexpected EOF")
        if data[i] not in _DIGITS:
            raise _bad(data[i], "in numeric literal")
    if data[i] == 0x30:
        i += 1
    else:
        while i < n and data[i] in _DIGITS:
            i += 1
    if i < n and data[i] == 0x2E:  # '.'
        i += 1
        if i >= n:
            raise DecodeError("unexpected EOF")
        if data[i] not in _DIGITS:
            raise _bad(data[i], "after decimal point in numeric literal")
        while i < n and data[i] in _DIGITS:
            i += 1
    if i < n and data[i] in (0x65, 0x45):  # 'e' 'E'
        i += 1
        if i < n and data[i] in (0x2B, 0x2D):
            i += 1
        if i >= n:
            raise DecodeError("unexpected EOF")
        if data[i] not in _DIGITS:
            raise _bad(data[i], "in exponent of numeric literal")
        while i < n and data[i] in _DIGITS:
            i += 1
    r.i = i
    return Num(data[start:i].decode("ascii"))


def _string(r: _Reader) -> str:
    data = r.data
    n = len(data)
    i = r.i + 1
    parts: list[str] = []
    run = i  # start of the current run of plain bytes
    while True:
        if i >= n:
            raise DecodeError("unexpected EOF")
        c = data[i]
        if c == 0x22:
            parts.append(data[run:i].decode("utf-8", "gojson-replace"))
            r.i = i + 1
            return "".join(parts)
        if c < 0x20:
            raise _bad(c, "in string literal")
        if c != 0x5C:
            i += 1
            continue
        parts.append(data[run:i].decode("utf-8", "gojson-replace"))
        i, text = _escape(data, i + 1)
        parts.append(text)
        run = i


def _escape(data: bytes, i: int) -> tuple[int, str]:
    """Decode one escape after a backslash; returns (next index, text)."""
    if i >= len(data):
        raise DecodeError("unexpected EOF")
    c = data[i]
    if c in _ESCAPES:
        return i + 1, _ESCAPES[c]
    if c != 0x75:  # 'u'
        raise _bad(c, "in string escape code")
    unit = _hex4(data, i + 1)
    i += 5
    if 0xD800 <= unit < 0xDC00 and data[i : i + 2] == b"\\u":
        low = _hex4(data, i + 2)
        if 0xDC00 <= low < 0xE000:
            return i + 6, chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
    if 0xD800 <= unit < 0xE000:
        return i, "\ufffd"  # a lone surrogate becomes U+FFFD, as in Go
    return i, chr(unit)


def _hex4(data: bytes, i: int) -> int:
    for k in range(i, i + 4):
        if k >= len(data):
            raise DecodeError("unexpected EOF")
        if data[k] not in _HEX:
            raise _bad(data[k], "in \\u hexadecimal character escape")
    return int(data[i : i + 4], 16)


# ------------------------------------------------------------------ Go struct decoding


@dataclass(frozen=True)
class GoType:
    """A Go type as far as decoding cares: its kind, its printed name, and fields."""

    kind: str  # string | bool | int | float32 | ptrbool | struct | slice
    name: str  # as reflect prints it, e.g. "int64", "toxiproxy.Proxy"
    struct: str = ""  # the struct's own name for error texts ("" when anonymous)
    fields: tuple = ()  # ((json name, GoType), ...) for structs
    elem: GoType | None = None  # for slices


STRING = GoType("string", "string")
BOOL = GoType("bool", "bool")
INT64 = GoType("int", "int64")
INT = GoType("int", "int")  # Go's int is 64-bit on the reference's platforms
FLOAT32 = GoType("float32", "float32")
PTR_BOOL = GoType("ptrbool", "bool")  # *bool: null sets nil; errors name "bool"

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass
class _Context:
    errors: list = field(default_factory=list)


def type_error(value_desc: str, target: GoType, struct_name: str | None, path: list) -> str:
    """Go's UnmarshalTypeError text."""
    if struct_name is not None or path:
        return (
            f"json: cannot unmarshal {value_desc} into Go struct field "
            f"{struct_name or ''}.{'.'.join(path)} of type {target.name}"
        )
    return f"json: cannot unmarshal {value_desc} into Go value of type {target.name}"


def _describe(value) -> str:
    if isinstance(value, Obj):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Num):
        return "number"
    return "string"


def fold(name: str) -> str:
    """Go's case folding of JSON keys: ASCII case, plus ſ -> s and Kelvin sign -> k."""
    return "".join(
        c.lower() if c < "\x80" else {"\u017f": "s", "\u212a": "k"}.get(c, c) for c in name
    )


def _find_field(fields: tuple, key: str):
    for name, typ in fields:
        if name == key:
            return name, typ
    folded = fold(key)
    for name, typ in fields:
        if fold(name) == folded:
            return name, typ
    return None


def _scalar(value, typ: GoType, where, ctx: _Context, current):
    """Convert one JSON scalar to ``typ``; on mismatch record Go's error, keep current."""
    struct_name, path = where
    if typ.kind == "string" and isinstance(value, str) and not isinstance(value, Num):
        return value
    if typ.kind in ("bool", "ptrbool") and isinstance(value, bool):
        return value
    if isinstance(value, Num) and typ.kind == "int":
        text = str(value)
        if "." not in text and "e" not in text and "E" not in text:
            number = int(text)
            if _INT64_MIN <= number <= _INT64_MAX:
                return number
        ctx.errors.append(type_error("number " + text, typ, struct_name, path))
        return current
    if isinstance(value, Num) and typ.kind == "float32":
        double = float(value)
        try:
            single = struct.unpack("f", struct.pack("f", double))[0]
        except OverflowError:
            single = math.inf
        if not math.isinf(single):
            return single
        ctx.errors.append(type_error("number " + str(value), typ, struct_name, path))
        return current
    ctx.errors.append(type_error(_describe(value), typ, struct_name, path))
    return current


def _assign(value, typ: GoType, current, where, ctx: _Context):
    """Decode ``value`` into a Go value of ``typ`` whose current value is ``current``."""
    if value is None:
        return None if typ.kind == "ptrbool" else current
    if typ.kind == "struct":
        if not isinstance(value, Obj):
            ctx.errors.append(type_error(_describe(value), typ, *where))
            return current
        target = dict(current) if current is not None else {}
        path = where[1]
        for key, item in value:
            found = _find_field(typ.fields, key)
            if found is None:
                continue
            name, ftyp = found
            target[name] = _assign(item, ftyp, target.get(name), (typ.struct, path + [name]), ctx)
        return target
    if typ.kind == "slice":
        if not isinstance(value, list) or isinstance(value, Obj):
            ctx.errors.append(type_error(_describe(value), typ, *where))
            return current
        elem = typ.elem
        assert elem is not None  # every slice GoType names its element type
        # Elements are decoded without a field context, as in Go.
        return [_assign(item, elem, None, (None, []), ctx) for item in value]
    return _scalar(value, typ, where, ctx, current)


def decode_into(value, typ: GoType, current=None):
    """Decode a parsed JSON value into ``typ`` starting from ``current`` (Go semantics).

    Returns (result, first_error_text_or_None). Like Go, decoding continues past type
    errors, so the result holds every field that did decode.
    """
    ctx = _Context()
    result = _assign(value, typ, current, (None, []), ctx)
    return result, (ctx.errors[0] if ctx.errors else None)


def parse_into(body: bytes, typ: GoType, current=None):
    """Read the first JSON value of ``body`` and decode it into ``typ``.

    Returns (result, error_text_or_None); the error text is what Go's decoder returns.
    """
    try:
        value = decode(body)
    except DecodeError as err:
        return current, str(err)
    return decode_into(value, typ, current)


# --------------------------------------------------------------------------- encoding

_HTML_SAFE = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def encode(value) -> str:
    """Compact JSON escaped like Go's ``json.Marshal`` (no float values allowed here)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_HTML_SAFE)


def to_float32(value: float) -> float:
    """Round a float to the nearest float32, as Go stores a ``float32`` field."""
    return struct.unpack("f", struct.pack("f", value))[0]


def format_float32(value: float) -> str:
    """Go's JSON text of a float32: shortest digits that round-trip, 'e' form if tiny/huge."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    for precision in range(1, 10):
        text = "%.*e" % (precision - 1, value)
        if to_float32(float(text)) == value:
            break
    mantissa, exp_text = text.split("e")
    exponent = int(exp_text)
    sign = "-" if value < 0 else ""
    digits = mantissa.replace(".", "").lstrip("-").rstrip("0") or "0"
    magnitude = abs(value)
    if magnitude < to_float32(1e-6) or magnitude >= to_float32(1e21):
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = "%+03d" % exponent
        if exp[0] == "-" and exp[1] == "0":  # Go cleans up e-09 to e-9
            exp = "-" + exp[2:]
        return sign + head + "e" + exp
    point = exponent + 1  # digits before the decimal point
    if point <= 0:
        return sign + "0." + "0" * (-point) + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]
