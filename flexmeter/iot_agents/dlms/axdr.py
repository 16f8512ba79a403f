"""A-XDR ``Data`` (IEC 61334-6 / Blue Book ``Data`` CHOICE): decoding and encoding.

A decoded element is a plain tuple ``(tag, value)`` — cheap to build, which is what makes the decoder fast
enough for 1 Hz pushes from thousands of meters:

===========================  ==========================================================================
tag                          value
===========================  ==========================================================================
0 null-data, 255 dont-care   ``None``
1 array, 2 structure         ``list`` of elements
19 compact-array             ``list`` of elements (rebuilt with their tags from the type description)
3 boolean                    ``bool``
4 bit-string                 :class:`BitString`
5,6,15,16,17,18,20,21,22     ``int`` (int32, uint32, int8, int16, uint8, uint16, int64, uint64, enum)
13 bcd                       ``int`` (two BCD digits)
23 float32, 24 float64       ``float`` (see :func:`float_to_decimal` for the exact decimal)
9 octet-string               ``bytes``
10 visible-string, 12 utf8   ``str``
25 date-time, 26 date, 27 t  :class:`CosemDateTime`, :class:`CosemDate`, :class:`CosemTime`
===========================  ==========================================================================

Lengths are BER (short form, or 0x81..0x84 and 1-4 length bytes). Every count and length is checked
against the bytes left before anything is allocated, and nesting is bounded, so hostile input costs
O(len) and raises only :class:`DecodeError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .cosem_time import CosemDate, CosemDateTime, CosemTime
from .errors import DecodeError, InvalidValueError, LengthError, TruncatedError, UnknownTagError

Data = tuple[int, Any]

NULL, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING = 0, 1, 2, 3, 4
DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BCD = 5, 6, 9, 10, 12, 13
INTEGER, LONG, UNSIGNED, LONG_UNSIGNED, COMPACT_ARRAY, LONG64, LONG64_UNSIGNED, ENUM = (
    15, 16, 17, 18, 19, 20, 21, 22)
FLOAT32, FLOAT64, DATE_TIME, DATE, TIME, DONT_CARE = 23, 24, 25, 26, 27, 255

TYPE_NAMES = {
    0: "null-data", 1: "array", 2: "structure", 3: "boolean", 4: "bit-string", 5: "double-long",
    6: "double-long-unsigned", 9: "octet-string", 10: "visible-string", 12: "utf8-string", 13: "bcd",
    15: "integer", 16: "long", 17: "unsigned", 18: "long-unsigned", 19: "compact-array", 20: "long64",
    21: "long64-unsigned", 22: "enum", 23: "float32", 24: "float64", 25: "date-time", 26: "date",
    27: "time", 255: "dont-care",
}

MAX_DEPTH = 48

_FIXED: dict[int, tuple[int, Any]] = {
    DOUBLE_LONG_UNSIGNED: (4, struct.Struct(">I").unpack_from),
    LONG_UNSIGNED: (2, struct.Struct(">H").unpack_from),
    LONG: (2, struct.Struct(">h").unpack_from),
    INTEGER: (1, struct.Struct(">b").unpack_from),
    UNSIGNED: (1, struct.Struct(">B").unpack_from),
    ENUM: (1, struct.Struct(">B").unpack_from),
    DOUBLE_LONG: (4, struct.Struct(">i").unpack_from),
    LONG64: (8, struct.Struct(">q").unpack_from),
    LONG64_UNSIGNED: (8, struct.Struct(">Q").unpack_from),
    FLOAT32: (4, struct.Struct(">f").unpack_from),
    FLOAT64: (8, struct.Struct(">d").unpack_from),
}
_FIXED_PACK: dict[int, Any] = {
    DOUBLE_LONG_UNSIGNED: struct.Struct(">I").pack, LONG_UNSIGNED: struct.Struct(">H").pack,
    LONG: struct.Struct(">h").pack, INTEGER: struct.Struct(">b").pack, UNSIGNED: struct.Struct(">B").pack,
    ENUM: struct.Struct(">B").pack, DOUBLE_LONG: struct.Struct(">i").pack,
    LONG64: struct.Struct(">q").pack, LONG64_UNSIGNED: struct.Struct(">Q").pack,
    FLOAT32: struct.Struct(">f").pack, FLOAT64: struct.Struct(">d").pack,
}
_INTEGER_TAGS = frozenset({5, 6, 15, 16, 17, 18, 20, 21, 22, 13})
_SIZED = {DATE_TIME: 12, DATE: 5, TIME: 4}
_NULL_NODE: tuple[int, Any] = (NULL, None)
FIXED_BY_TAG: list[tuple[int, Any] | None] = [_FIXED.get(tag) for tag in range(256)]
"""``_FIXED`` indexed by tag (a list index is cheaper than a dict lookup in the per-element loops)."""


@dataclass(frozen=True, slots=True)
class BitString:
    """A bit-string: ``bits`` significant bits, first bit = MSB of ``data[0]``."""

    bits: int
    data: bytes

    def __str__(self) -> str:
        return "".join(format(b, "08b") for b in self.data)[: self.bits]


def read_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A BER length at ``pos``: returns (length, position after it)."""
    if pos >= end:
        raise TruncatedError("BER length", pos)
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise LengthError("BER length form (0x81..0x84 or short)", pos, f"{first:#04x}")
    if pos + 1 + count > end:
        raise TruncatedError("BER length bytes", pos)
    return int.from_bytes(buf[pos + 1:pos + 1 + count], "big"), pos + 1 + count


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    if size > 4:
        raise ValueError("length too large for BER")
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def decode_data(buf: bytes, pos: int = 0, end: int | None = None) -> tuple[Data, int]:
    """Decode one ``Data`` element at ``pos``; returns (element, position after it)."""
    if end is None:
        end = len(buf)
    return _decode(buf, pos, end, 0)


def decode_data_exact(buf: bytes) -> Data:
    """Decode a buffer that holds exactly one ``Data`` element (trailing bytes are an error)."""
    node, pos = _decode(buf, 0, len(buf), 0)
    if pos != len(buf):
        raise LengthError("trailing bytes after A-XDR data", pos, f"{len(buf) - pos} bytes")
    return node


def _decode(buf: bytes, pos: int, end: int, depth: int) -> tuple[Data, int]:
    if pos >= end:
        raise TruncatedError("A-XDR data tag", pos)
    tag = buf[pos]
    pos += 1
    if tag in (STRUCTURE, ARRAY):
        if pos < end and buf[pos] < 0x80:
            count = buf[pos]
            pos += 1
        else:
            count, pos = read_length(buf, pos, end)
        if count > end - pos:
            raise LengthError(f"{TYPE_NAMES[tag]} count exceeds the bytes left", pos - 1, str(count))
        if depth >= MAX_DEPTH:
            raise LengthError("A-XDR nesting deeper than allowed", pos - 1, str(MAX_DEPTH))
        items: list[Data] = []
        append = items.append
        depth += 1
        fixed_by_tag = FIXED_BY_TAG
        for _ in range(count):
            # Scalars are decoded inline (no call per element): the common case in push lists.
            if pos >= end:
                raise TruncatedError("A-XDR data tag", pos)
            child = buf[pos]
            spec = fixed_by_tag[child]
            if spec is not None:
                size, unpack = spec
                if pos + 1 + size > end:
                    raise TruncatedError(f"{TYPE_NAMES[child]} value", pos + 1)
                append((child, unpack(buf, pos + 1)[0]))
                pos += 1 + size
            elif child == NULL:
                append(_NULL_NODE)  # unused phases in Kamstrup lists
                pos += 1
            elif child == OCTET_STRING and pos + 1 < end and buf[pos + 1] < 0x80:
                stop = pos + 2 + buf[pos + 1]
                if stop > end:
                    raise TruncatedError(f"octet-string of {buf[pos + 1]} bytes", pos + 2)
                append((OCTET_STRING, buf[pos + 2:stop]))
                pos = stop
            elif child == VISIBLE_STRING and pos + 1 < end and buf[pos + 1] < 0x80 \
                    and pos + 2 + buf[pos + 1] <= end and (raw := buf[pos + 2:pos + 2 + buf[pos + 1]]).isascii():
                append((VISIBLE_STRING, raw.decode("ascii")))  # list versions, meter ids (no recursion)
                pos += 2 + len(raw)
            elif child == STRUCTURE and pos + 6 <= end and buf[pos + 1] == 2 and buf[pos + 2] == INTEGER \
                    and buf[pos + 4] == ENUM:
                # COSEM scaler_unit {integer, enum}: the most common nested structure in pushes.
                scaler = buf[pos + 3]
                append((STRUCTURE, [(INTEGER, scaler - 256 if scaler > 127 else scaler), (ENUM, buf[pos + 5])]))
                pos += 6
            else:
                node, pos = _decode(buf, pos, end, depth)
                append(node)
        return (tag, items), pos
    fixed = _FIXED.get(tag)
    if fixed is not None:
        size, unpack = fixed
        if pos + size > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} value", pos)
        return (tag, unpack(buf, pos)[0]), pos + size
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        if pos < end and buf[pos] < 0x80:
            length = buf[pos]
            pos += 1
        else:
            length, pos = read_length(buf, pos, end)
        stop = pos + length
        if stop > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} of {length} bytes", pos)
        raw = buf[pos:stop]
        if tag == OCTET_STRING:
            return (tag, raw), stop
        try:
            text = raw.decode("ascii" if tag == VISIBLE_STRING else "utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidValueError(f"{TYPE_NAMES[tag]} text", pos + exc.start) from None
        return (tag, text), stop
    if tag == BOOLEAN:
        if pos >= end:
            raise TruncatedError("boolean value", pos)
        return (tag, buf[pos] != 0), pos + 1
    if tag in (NULL, DONT_CARE):
        return (tag, None), pos
    if tag == BIT_STRING:
        bits, pos = read_length(buf, pos, end)
        stop = pos + (bits + 7) // 8
        if stop > end:
            raise TruncatedError(f"bit-string of {bits} bits", pos)
        return (tag, BitString(bits, buf[pos:stop])), stop
    if tag == BCD:
        if pos >= end:
            raise TruncatedError("bcd value", pos)
        return (tag, _bcd(buf[pos], pos)), pos + 1
    sized = _SIZED.get(tag)
    if sized is not None:
        if pos + sized > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} value", pos)
        raw = buf[pos:pos + sized]
        cls: Any = CosemDateTime if tag == DATE_TIME else CosemDate if tag == DATE else CosemTime
        return (tag, cls.decode(raw, pos)), pos + sized
    if tag == COMPACT_ARRAY:
        if depth >= MAX_DEPTH:
            raise LengthError("A-XDR nesting deeper than allowed", pos - 1, str(MAX_DEPTH))
        return _decode_compact_array(buf, pos, end, depth + 1)
    raise UnknownTagError("A-XDR data type tag", pos - 1, f"{tag:#04x}")


def _bcd(byte: int, pos: int) -> int:
    high, low = byte >> 4, byte & 0x0F
    if high > 9 or low > 9:
        raise InvalidValueError("bcd digit", pos, f"{byte:#04x}")
    return high * 10 + low


# -- compact-array ------------------------------------------------------------------------------------
# A type description is (tag, payload): payload is None for simple types, (count, element description)
# for arrays and a list of descriptions for structures.
TypeDescription = tuple[int, Any]


def _read_description(buf: bytes, pos: int, end: int, depth: int) -> tuple[TypeDescription, int]:
    if pos >= end:
        raise TruncatedError("compact-array type description", pos)
    if depth >= MAX_DEPTH:
        raise LengthError("type description nesting deeper than allowed", pos, str(MAX_DEPTH))
    tag = buf[pos]
    pos += 1
    if tag == ARRAY:
        if pos + 2 > end:
            raise TruncatedError("compact-array array count", pos)
        count = int.from_bytes(buf[pos:pos + 2], "big")
        element, pos = _read_description(buf, pos + 2, end, depth + 1)
        return (tag, (count, element)), pos
    if tag == STRUCTURE:
        count, pos = read_length(buf, pos, end)
        if count > end - pos:
            raise LengthError("compact-array structure description count", pos, str(count))
        fields = []
        for _ in range(count):
            field, pos = _read_description(buf, pos, end, depth + 1)
            fields.append(field)
        return (tag, fields), pos
    if tag in TYPE_NAMES and tag not in (COMPACT_ARRAY, DONT_CARE):
        return (tag, None), pos
    raise UnknownTagError("compact-array type description tag", pos - 1, f"{tag:#04x}")


def _min_size(desc: TypeDescription) -> int:
    tag, payload = desc
    if tag == ARRAY:
        return int(payload[0]) * _min_size(payload[1])
    if tag == STRUCTURE:
        return sum(_min_size(f) for f in payload)
    if tag in _FIXED:
        return int(_FIXED[tag][0])
    return {NULL: 0, BOOLEAN: 1, BCD: 1, DATE_TIME: 12, DATE: 5, TIME: 4}.get(tag, 1)


def _decode_typed(desc: TypeDescription, buf: bytes, pos: int, end: int) -> tuple[Data, int]:
    tag, payload = desc
    if tag == ARRAY:
        count, element = payload
        if count * max(_min_size(element), 0) > end - pos:
            raise LengthError("compact-array array elements exceed the contents", pos, str(count))
        items = []
        for _ in range(count):
            node, pos = _decode_typed(element, buf, pos, end)
            items.append(node)
        return (ARRAY, items), pos
    if tag == STRUCTURE:
        fields = []
        for field in payload:
            node, pos = _decode_typed(field, buf, pos, end)
            fields.append(node)
        return (STRUCTURE, fields), pos
    return _untagged(tag, buf, pos, end)


def _untagged(tag: int, buf: bytes, pos: int, end: int) -> tuple[Data, int]:
    """A simple (non-container) value whose tag came from a compact-array type description."""
    fixed = _FIXED.get(tag)
    if fixed is not None:
        size, unpack = fixed
        if pos + size > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} value", pos)
        return (tag, unpack(buf, pos)[0]), pos + size
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BIT_STRING):
        length, start = read_length(buf, pos, end)
        stop = start + ((length + 7) // 8 if tag == BIT_STRING else length)
        if stop > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} of {length}", start)
        raw = buf[start:stop]
        if tag == OCTET_STRING:
            return (tag, raw), stop
        if tag == BIT_STRING:
            return (tag, BitString(length, raw)), stop
        try:
            return (tag, raw.decode("ascii" if tag == VISIBLE_STRING else "utf-8")), stop
        except UnicodeDecodeError as exc:
            raise InvalidValueError(f"{TYPE_NAMES[tag]} text", start + exc.start) from None
    if tag == NULL:
        return (tag, None), pos
    if pos >= end:
        raise TruncatedError(f"{TYPE_NAMES.get(tag, tag)} value", pos)
    if tag == BOOLEAN:
        return (tag, buf[pos] != 0), pos + 1
    if tag == BCD:
        return (tag, _bcd(buf[pos], pos)), pos + 1
    sized = _SIZED.get(tag)
    if sized is not None:
        if pos + sized > end:
            raise TruncatedError(f"{TYPE_NAMES[tag]} value", pos)
        cls: Any = CosemDateTime if tag == DATE_TIME else CosemDate if tag == DATE else CosemTime
        return (tag, cls.decode(buf[pos:pos + sized], pos)), pos + sized
    raise UnknownTagError("compact-array element type", pos, f"{tag:#04x}")


def _decode_compact_array(buf: bytes, pos: int, end: int, depth: int) -> tuple[Data, int]:
    desc, pos = _read_description(buf, pos, end, depth)
    length, pos = read_length(buf, pos, end)
    stop = pos + length
    if stop > end:
        raise TruncatedError(f"compact-array contents of {length} bytes", pos)
    if _min_size(desc) == 0 and length > 0:
        raise InvalidValueError("compact-array element type has no size", pos)
    items = []
    while pos < stop:
        node, pos = _decode_typed(desc, buf, pos, stop)
        items.append(node)
    return (COMPACT_ARRAY, items), stop


# -- encoding -----------------------------------------------------------------------------------------
def encode_data(node: Data) -> bytes:
    """The A-XDR bytes of one element (compact arrays are encoded as plain arrays: no description)."""
    out = bytearray()
    _encode(node, out)
    return bytes(out)


def _encode(node: Data, out: bytearray) -> None:
    tag, value = node
    if tag == COMPACT_ARRAY:
        tag = ARRAY
    out.append(tag)
    if tag in (ARRAY, STRUCTURE):
        out += encode_length(len(value))
        for item in value:
            _encode(item, out)
    elif tag in _FIXED_PACK:
        out += _FIXED_PACK[tag](value)
    elif tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        raw = value if isinstance(value, bytes | bytearray) else (
            value.encode("ascii" if tag == VISIBLE_STRING else "utf-8"))
        out += encode_length(len(raw)) + raw
    elif tag == BOOLEAN:
        out.append(0xFF if value else 0x00)
    elif tag in (NULL, DONT_CARE):
        pass
    elif tag == BIT_STRING:
        out += encode_length(value.bits) + value.data
    elif tag == BCD:
        out.append((value // 10) << 4 | value % 10)
    elif tag in _SIZED:
        out += value.encode()
    else:
        raise ValueError(f"cannot encode A-XDR tag {tag}")


# -- helpers for consumers ----------------------------------------------------------------------------
def float_to_decimal(tag: int, value: float) -> Decimal:
    """The shortest decimal that reads back as the same float32/float64 (no binary noise)."""
    if tag == FLOAT32:
        packed = struct.pack(">f", value)
        for digits in range(1, 10):
            text = f"{value:.{digits}g}"
            if struct.pack(">f", float(text)) == packed:
                return Decimal(text)
    return Decimal(repr(value))


def is_integer(tag: int) -> bool:
    return tag in _INTEGER_TAGS


def to_json(node: Data) -> Any:
    """A JSON-ready view of an element: ``{"type": name, "value": ...}`` recursively."""
    tag, value = node
    name = TYPE_NAMES.get(tag, str(tag))
    if tag in (ARRAY, STRUCTURE, COMPACT_ARRAY):
        return {"type": name, "value": [to_json(item) for item in value]}
    if isinstance(value, bytes):
        return {"type": name, "value": value.hex()}
    if isinstance(value, CosemDateTime | CosemDate | CosemTime):
        return {"type": name, "value": value.to_json()}
    if isinstance(value, BitString):
        return {"type": name, "value": str(value)}
    if tag in (FLOAT32, FLOAT64):
        return {"type": name, "value": str(float_to_decimal(tag, value))}
    return {"type": name, "value": value}


__all__ = ["BitString", "Data", "DecodeError", "decode_data", "decode_data_exact", "encode_data",
           "encode_length", "float_to_decimal", "read_length", "to_json"]
