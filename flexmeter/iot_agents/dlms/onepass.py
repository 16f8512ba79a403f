"""One pass from the bytes of a self-describing push body to its A-XDR tree *and* its values by OBIS.

A self-describing list (Aidon, COSEM register captures) is an array of ``{OBIS, value[, {scaler, unit}]}``
structures: the general path decodes each structure through the recursive A-XDR decoder and then walks
the tree again for the values. Here each element is read straight from the bytes, and its tree node and
its scaled value are built together.

This path is optimistic: it handles the byte shapes these lists take (short lengths, scalar values,
``02 02 0F ss 16 uu`` scaler_unit) and returns ``None`` for anything else — another shape, bad or
truncated bytes, a value the conversion rejects — and the caller then takes the general path
(:func:`.axdr.decode_data` + :func:`.push.push_values`), which gives the result or the error. Both paths
give equal results: tests/iot_agents/dlms/test_onepass.py checks it over the corpus and generated
lists.
"""

from __future__ import annotations

import struct

from .axdr import (
    _FIXED,
    _NULL_NODE,
    ARRAY,
    ENUM,
    FIXED_BY_TAG,
    INTEGER,
    NULL,
    OCTET_STRING,
    STRUCTURE,
    UTF8_STRING,
    VISIBLE_STRING,
    Data,
)
from .errors import DecodeError
from .obis import UNITS, obis_from_bytes
from .profiles import ProfileRegistry
from .push import (
    _INTS,
    _LIST_VERSION_CDE,
    MAKERS,
    ObisValue,
    PushValues,
    _string,
    convert,
    finish_self_describing,
    flat_values,
)

_FAILED = (IndexError, struct.error, UnicodeDecodeError, DecodeError)

# Immutable leaves shared between trees (fewer allocations, less garbage-collector work per push).
_INTEGERS = {s: (INTEGER, s) for s in range(-128, 128)}
_ENUMS = {u: (ENUM, u) for u in range(256)}
_OBIS_NODES: dict[bytes, tuple[str, Data]] = {}


def _obis_node(raw: bytes) -> tuple[str, Data]:
    found = (obis_from_bytes(raw), (OCTET_STRING, raw))
    if len(_OBIS_NODES) < 65536:
        _OBIS_NODES[raw] = found
    return found


def one_pass_push(buf: bytes, pos: int, registry: ProfileRegistry) -> tuple[Data, PushValues] | None:
    """The tree and values of a push body filling ``buf[pos:]`` by the path its shape takes, or ``None``."""
    if pos + 2 >= len(buf) or (buf[pos] != STRUCTURE and buf[pos] != ARRAY):
        return None  # a scalar body (e.g. the GGC pushes' octet string): the general path
    if buf[pos + 2] == STRUCTURE:
        return self_describing_push(buf, pos, registry)
    return flat_push(buf, pos, registry)


def self_describing_push(buf: bytes, pos: int, registry: ProfileRegistry) -> tuple[Data, PushValues] | None:
    """The tree and values of a self-describing body filling ``buf[pos:]``, or ``None`` (general path)."""
    try:
        return _parse(buf, pos, registry)
    except _FAILED:
        return None


def _parse(buf: bytes, pos: int, registry: ProfileRegistry) -> tuple[Data, PushValues] | None:
    end = len(buf)
    tag = buf[pos]
    count = buf[pos + 1]
    p = pos + 2
    if (tag != ARRAY and tag != STRUCTURE) or not 0 < count < 0x80 or buf[p] != STRUCTURE:
        return None
    result = PushValues("self_describing")
    values = result.values
    deferred: list[tuple[str, Data]] = []
    items: list[Data] = []
    append = items.append
    obis_nodes_get = _OBIS_NODES.get
    fixed_get = _FIXED.get
    units_get = UNITS.get
    makers = MAKERS
    ints = _INTS
    for _ in range(count):
        fields = buf[p + 1]
        if buf[p] != STRUCTURE or buf[p + 2] != OCTET_STRING or buf[p + 3] != 6 or not 2 <= fields <= 3:
            return None
        raw_obis = buf[p + 4:p + 10]
        known = obis_nodes_get(raw_obis)
        if known is None:
            known = _obis_node(raw_obis)
        obis, obis_node = known
        vtag = buf[p + 10]
        p += 11
        spec = fixed_get(vtag)
        if spec is not None:
            size, unpack = spec
            raw = unpack(buf, p)[0]
            p += size
        elif vtag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
            length = buf[p]
            if length >= 0x80:
                return None
            stop = p + 1 + length
            raw = buf[p + 1:stop]
            if vtag != OCTET_STRING:
                raw = raw.decode("ascii" if vtag == VISIBLE_STRING else "utf-8")
            p = stop
        elif vtag == NULL:
            raw = None
        else:
            return None
        node = (vtag, raw)
        if fields == 3:
            # scaler_unit {integer, enum}, the only third field this path takes
            if buf[p] != STRUCTURE or buf[p + 1] != 2 or buf[p + 2] != INTEGER or buf[p + 4] != ENUM:
                return None
            scaler = buf[p + 3]
            if scaler > 127:
                scaler -= 256
            unit_code = buf[p + 5]
            p += 6
            append((STRUCTURE, [obis_node, node, (STRUCTURE, [_INTEGERS[scaler], _ENUMS[unit_code]])]))
            unit = units_get(unit_code)
            if vtag in ints:
                values[obis] = ObisValue(obis, makers[scaler](raw), unit, scaler, raw)
            else:
                values[obis] = convert(obis, node, scaler, unit)
        else:
            append((STRUCTURE, [obis_node, node]))
            if _LIST_VERSION_CDE in obis and result.list_version is None:
                result.list_version = _string(node)
            values[obis] = None  # type: ignore[assignment]  # keeps the frame's order; set below
            deferred.append((obis, node))
    if p != end:
        return None
    finish_self_describing(result, deferred, registry)
    return (tag, items), result


def flat_push(buf: bytes, pos: int, registry: ProfileRegistry) -> tuple[Data, PushValues] | None:
    """The tree and values of a structure of scalars (the interleaved and positional lists: Kamstrup,
    Kaifa) filling ``buf[pos:]``, or ``None`` (general path)."""
    try:
        items = _flat(buf, pos)
    except _FAILED:
        return None
    if items is None:
        return None
    try:
        return (STRUCTURE, items), flat_values(items, registry)
    except DecodeError:
        return None


def _flat(buf: bytes, pos: int) -> list[Data] | None:
    count = buf[pos + 1]
    if buf[pos] != STRUCTURE or not 0 < count < 0x80:
        return None
    p = pos + 2
    items: list[Data] = []
    append = items.append
    fixed_by_tag = FIXED_BY_TAG
    for _ in range(count):
        tag = buf[p]
        spec = fixed_by_tag[tag]
        if spec is not None:
            size, unpack = spec
            append((tag, unpack(buf, p + 1)[0]))
            p += 1 + size
        elif tag in (OCTET_STRING, VISIBLE_STRING):
            length = buf[p + 1]
            if length >= 0x80:
                return None
            stop = p + 2 + length
            raw = buf[p + 2:stop]
            append((OCTET_STRING, raw) if tag == OCTET_STRING else (VISIBLE_STRING, raw.decode("ascii")))
            p = stop
        elif tag == NULL:
            append(_NULL_NODE)
            p += 1
        else:
            return None
    return items if p == len(buf) else None
