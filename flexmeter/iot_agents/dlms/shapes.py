"""Compiled push shapes: the steady-state path from a push body's bytes to its tree and values by OBIS.

A meter pushes the same list every second: the same structure, tags, lengths, OBIS codes, list version and
scaler_units; only the values change. The first time a body is seen it goes the general way (A-XDR tree,
list profile, values) and its *shape* is compiled from the bytes and that result:

* a **skeleton**: every byte that is not a value (tags, counts, lengths, OBIS codes, the list version,
  scaler_unit structures) — checked all at once as ``int.from_bytes(buf) & mask == skeleton``;
* one precompiled :class:`struct.Struct` reading every value at its offset (``>I``, ``>h``, ``12s`` …);
* the values plan: per value its OBIS code, scaler, unit and Decimal maker, resolved once from the frame's
  scaler_unit or the list profile; numbers become ``ObisValue(obis, make(raw), unit, scaler, raw)``,
  other kinds (text, clock octet strings, floats, nulls) go through :func:`.push.convert` as on the
  general path.

From these, one Python function per shape is generated (as :mod:`dataclasses` does for ``__init__``):
one skeleton check, one ``unpack_from``, then the tree and the values dict as literal displays — no loop,
no per-element dispatch. Only identifiers and ``int`` literals are written into its text; every constant
(OBIS texts, units, shared leaf nodes, makers, the struct) is bound by name, so no byte of a frame ever
becomes code.

A later body of the same length whose skeleton matches takes the compiled path; anything else (another
shape, a bad value, a conversion that fails) returns ``None`` and the caller takes the general path,
which gives the result or the error. A shape is only kept when running it on the body it was compiled from
gives exactly the general path's tree and values (digits and exponents included), and
tests/iot_agents/dlms/test_shapes.py checks the two paths agree on the corpus and on generated lists.

Compiled shapes belong to a :class:`.profiles.ProfileRegistry` (the values depend on its profiles) and
are bounded in number; bodies that cannot be compiled (long lengths, booleans, bit-strings, compact
arrays, repeated OBIS codes) always take the general path.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from operator import methodcaller
from typing import Any

from .axdr import (
    ARRAY,
    DATE_TIME,
    FIXED_BY_TAG,
    NULL,
    OCTET_STRING,
    STRUCTURE,
    UTF8_STRING,
    VISIBLE_STRING,
    Data,
)
from .cosem_time import CosemDateTime
from .errors import DecodeError
from .obis import UNITS, obis_from_bytes
from .profiles import ListProfile, ProfileRegistry
from .push import (
    _INTS,
    _LIST_VERSION_CDE,
    MAKERS,
    Make,
    ObisValue,
    PushValues,
    _maker,
    _positions,
    _text_or_hex,
    convert,
    raw_plan,
    units_plan,
)

MAX_PER_LENGTH = 4
"""Shapes kept per body length (different lists of the same length, e.g. two meter types)."""
MAX_SHAPES = 512
"""Shapes kept per registry; beyond, the cache starts again (a head end sees a few meter types)."""
MAX_DEPTH = 8
"""Container nesting compiled (push lists nest 3 deep)."""
MAX_LEAVES = 2048
"""Elements compiled per body (bounds the generated function's size and its compile time)."""
MAX_ATTEMPTS_PER_LENGTH = 8
"""Compilations per body length (kept or not); beyond, bodies of that length keep the general path."""

_CODES = {5: "i", 6: "I", 15: "b", 16: "h", 17: "B", 18: "H", 20: "q", 21: "Q", 22: "B", 23: "f", 24: "d"}
_SPECIAL: dict[int, Callable[[bytes], Any]] = {
    VISIBLE_STRING: methodcaller("decode", "ascii"),
    UTF8_STRING: methodcaller("decode", "utf-8"),
    DATE_TIME: CosemDateTime.decode,
}
_CLOCK = ":1.0.0."  # convert() reads a 12-byte octet string under this OBIS as a COSEM date-time
_FAILED = (DecodeError, UnicodeDecodeError, struct.error, ValueError, IndexError)


class _Unsupported(Exception):
    """A body outside what shapes compile (it keeps the general path)."""


class _Leaf:
    __slots__ = ("const", "node", "size", "start", "tag")

    def __init__(self, tag: int, start: int, size: int, node: Data) -> None:
        self.tag, self.start, self.size, self.node = tag, start, size, node
        self.const = tag == NULL  # null-data has no value bytes


class _Box:
    __slots__ = ("children", "node", "tag")

    def __init__(self, tag: int, children: list[_Leaf | _Box], node: Data) -> None:
        self.tag, self.children, self.node = tag, children, node


_Node = _Leaf | _Box


def _walk(buf: bytes, p: int, node: Data, depth: int = 0) -> tuple[_Node, int]:
    """The shape of the element at ``p`` (already decoded as ``node`` by the general path)."""
    tag = buf[p]
    if tag in (STRUCTURE, ARRAY):
        count = buf[p + 1]
        if count >= 0x80 or node[0] != tag or len(node[1]) != count or depth >= MAX_DEPTH:
            raise _Unsupported
        p += 2
        children: list[_Node] = []
        for child_node in node[1]:
            child, p = _walk(buf, p, child_node, depth + 1)
            children.append(child)
        return _Box(tag, children, node), p
    spec = FIXED_BY_TAG[tag]
    if spec is not None and tag in _CODES:
        return _Leaf(tag, p + 1, spec[0], node), p + 1 + spec[0]
    if tag == NULL:
        return _Leaf(tag, p + 1, 0, node), p + 1
    if tag in (OCTET_STRING, VISIBLE_STRING, UTF8_STRING):
        length = buf[p + 1]
        if length >= 0x80:
            raise _Unsupported
        return _Leaf(tag, p + 2, length, node), p + 2 + length
    if tag == DATE_TIME:
        return _Leaf(tag, p + 1, 12, node), p + 13
    raise _Unsupported


def _is_obis(n: _Node) -> bool:
    return isinstance(n, _Leaf) and n.tag == OCTET_STRING and n.size == 6


def _is_text(n: _Node) -> bool:
    """Whether :func:`.push._string` reads the element as a list version."""
    return isinstance(n, _Leaf) and (n.tag in (VISIBLE_STRING, UTF8_STRING) or (n.tag == OCTET_STRING and n.size != 6))


def _set_const(n: _Node) -> None:
    if isinstance(n, _Box):
        for child in n.children:
            _set_const(child)
    else:
        n.const = True


def _obis(n: _Node) -> str:
    return obis_from_bytes(n.node[1])


# A value entry: (OBIS, the leaf, scaler, unit, maker or None for convert()).
_Entry = tuple[str, _Leaf, int, str | None, Make | None]
ShapeRun = Callable[[bytes, int], "tuple[Data, PushValues] | None"]


def _leaves(n: _Node, out: list[_Leaf]) -> None:
    if isinstance(n, _Box):
        for child in n.children:
            _leaves(child, out)
    else:
        out.append(n)


class _Source:
    """The text of a shape's function. Only identifiers made here and ``int`` literals are written into it;
    every other constant (OBIS texts, units, nodes, makers, the struct) is bound by name in its namespace,
    so nothing read from a frame ever becomes code."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"ObisValue": ObisValue, "PushValues": PushValues, "convert": convert,
                                      "from_bytes": int.from_bytes, "FAILED": _FAILED}
        self._by_id: dict[int, str] = {}

    def bind(self, value: Any) -> str:
        """The name of a constant in the function's namespace."""
        name = self._by_id.get(id(value))
        if name is None:
            name = self._by_id[id(value)] = f"k{len(self._by_id)}"
            self.names[name] = value
        return name


def _int(value: int) -> str:
    return str(int(value))


def _tree(n: _Node, src: _Source, var: dict[int, str]) -> str:
    if isinstance(n, _Box):
        return f"({_int(n.tag)}, [{', '.join(_tree(c, src, var) for c in n.children)}])"
    if n.const:
        return src.bind(n.node)  # an immutable tuple of immutables: shared between results
    return f"({_int(n.tag)}, {var[id(n)]})"


def build_run(body: bytes, root: _Node, push: PushValues, entries: list[_Entry]) -> ShapeRun:
    """The function decoding bodies of this shape (see the module docstring)."""
    leaves: list[_Leaf] = []
    _leaves(root, leaves)
    if len(leaves) > MAX_LEAVES:
        raise _Unsupported
    values = [leaf for leaf in leaves if not leaf.const]
    var = {id(leaf): f"v{i}" for i, leaf in enumerate(values)}
    mask = bytearray(b"\xff" * len(body))
    fmt = [">"]
    at = 0
    for leaf in values:
        mask[leaf.start:leaf.start + leaf.size] = bytes(leaf.size)
        if leaf.start > at:
            fmt.append(f"{leaf.start - at}x")
        fmt.append(_CODES.get(leaf.tag) or f"{leaf.size}s")
        at = leaf.start + leaf.size
    if at < len(body):
        fmt.append(f"{len(body) - at}x")
    compiled = struct.Struct("".join(fmt))
    if compiled.size != len(body):
        raise _Unsupported
    src = _Source()
    mask_int = int.from_bytes(mask, "big")
    skeleton = int.from_bytes(body, "big") & mask_int
    lines = ["def run(buf, pos):",
             f"    if from_bytes(buf, 'big') & {src.bind(mask_int)} != {src.bind(skeleton)}:",
             "        return None",
             "    try:"]
    if values:
        names = ", ".join(var[id(leaf)] for leaf in values)
        lines.append(f"        {names}, = {src.bind(compiled.unpack_from)}(buf, pos)")
    for leaf in values:
        special = _SPECIAL.get(leaf.tag)
        if special is not None:
            lines.append(f"        {var[id(leaf)]} = {src.bind(special)}({var[id(leaf)]})")
    lines.append(f"        tree = {_tree(root, src, var)}")
    items = []
    for obis, leaf, scaler, unit, make in entries:
        key = src.bind(obis)
        v = var.get(id(leaf), "")
        if make is not None:
            items.append(f"{key}: ObisValue({key}, {src.bind(make)}({v}), {src.bind(unit)}, {_int(scaler)}, {v})")
        elif v and leaf.tag in (VISIBLE_STRING, UTF8_STRING):  # as convert() gives them
            items.append(f"{key}: ObisValue({key}, {v}, None, 0, {v})")
        elif v and leaf.tag == OCTET_STRING and not (leaf.size == 12 and _CLOCK in obis):
            items.append(f"{key}: ObisValue({key}, {src.bind(_text_or_hex)}({v}), None, 0, {v})")
        else:
            node = _tree(leaf, src, var)
            items.append(f"{key}: convert({key}, {node}, {_int(scaler)}, {src.bind(unit)})")
    lines.append(f"        values = {{{', '.join(items)}}}")
    lines += ["    except FAILED:", "        return None",
              f"    return tree, PushValues({src.bind(push.layout)}, {src.bind(push.profile)}, "
              f"{src.bind(push.manufacturer)}, {src.bind(push.list_version)}, values)"]
    namespace = dict(src.names)
    exec(compile("\n".join(lines) + "\n", f"<dlms shape {len(body)} bytes>", "exec"), namespace)
    run: ShapeRun = namespace["run"]
    return run


# -- which bytes are skeleton, and the values plan, per layout (as push.py reads a body) ----------------
def _entry(obis: str, leaf: _Node, scaler: int, unit: str | None, make: Make | None) -> _Entry:
    if not isinstance(leaf, _Leaf):
        raise _Unsupported  # a container as a value: general path
    if make is not None and leaf.tag in _INTS and not leaf.const:
        return obis, leaf, scaler, unit, make
    return obis, leaf, scaler, unit, None


def _self_describing(root: _Box, reg: ProfileRegistry, push: PushValues) -> list[_Entry]:
    profile = reg.by_version(push.list_version) or reg.by_layout("self_describing")
    plan = units_plan(profile) if profile is not None else {}
    entries: list[_Entry] = []
    deferred: list[tuple[int, str, _Node]] = []
    for element in root.children:
        if not isinstance(element, _Box) or len(element.children) < 2 or not _is_obis(element.children[0]):
            raise _Unsupported
        key, node = element.children[0], element.children[1]
        _set_const(key)
        obis = _obis(key)
        if len(element.children) >= 3:
            su = element.children[2]
            if (isinstance(su, _Box) and su.tag == STRUCTURE and len(su.children) == 2
                    and all(isinstance(c, _Leaf) and c.tag in _INTS for c in su.children)):
                _set_const(su)
                scaler, unit_code = su.node[1][0][1], su.node[1][1][1]
                unit = UNITS.get(unit_code)
                entries.append(_entry(obis, node, scaler, unit, MAKERS.get(scaler) or _maker(scaler)))
                continue
        if _LIST_VERSION_CDE in obis:
            _set_const(node)
        deferred.append((len(entries), obis, node))
        entries.append(("", node, 0, None, None))  # type: ignore[arg-type]  # set below
    for index, obis, node in deferred:
        scaler, unit, make = plan.get(obis, (0, None, Decimal))
        entries[index] = _entry(obis, node, scaler, unit, make)
    return entries


def _interleaved(root: _Box, reg: ProfileRegistry, push: PushValues) -> list[_Entry]:
    items = root.children
    start = 1 if _is_text(items[0]) else 0
    if start:
        items[0].const = True  # type: ignore[union-attr]
    elif _is_obis(items[0]) and _LIST_VERSION_CDE in _obis(items[0]):
        _set_const(items[1])
    profile = reg.by_version(push.list_version) or reg.by_layout("interleaved")
    plan = raw_plan(profile) if profile is not None else {}
    entries: list[_Entry] = []
    for key, node in zip(items[start::2], items[start + 1::2], strict=True):
        if isinstance(key, _Leaf) and isinstance(node, _Leaf) and key.tag == NULL and node.tag == NULL:
            continue
        if not _is_obis(key):
            raise _Unsupported
        _set_const(key)
        found = plan.get(key.node[1])
        if found is None:
            entries.append(_entry(_obis(key), node, 0, None, Decimal))
        else:
            obis, scaler, unit, make = found
            entries.append(_entry(obis, node, scaler, unit, make))
    return entries


def _positional(root: _Box, reg: ProfileRegistry, push: PushValues) -> list[_Entry]:
    items = root.children
    if _is_text(items[0]):
        items[0].const = True  # type: ignore[union-attr]
    profile: ListProfile | None
    if push.list_version is not None:
        profile = reg.by_version(push.list_version)
        versioned = True
    else:
        profile = reg.unversioned(len(items)) if push.profile is not None else None
        versioned = False
    if profile is None:
        return []
    positions = _positions(profile, len(items), versioned)
    if positions is None:
        raise _Unsupported
    return [_entry(obis, node, scaler, unit, make)
            for (obis, (scaler, unit, make)), node in zip(positions, items, strict=True)]


def compile_shape(buf: bytes, pos: int, tree: Data, push: PushValues, reg: ProfileRegistry) -> ShapeRun | None:
    """The shape of the body ``buf[pos:]`` whose general-path result is ``(tree, push)``, or ``None`` when
    the body is outside what shapes compile or the compiled path would not give exactly that result."""
    body = bytes(buf[pos:])
    try:
        root, end = _walk(body, 0, tree)
        if end != len(body):
            return None
        entries: list[_Entry]
        if push.layout == "single":
            entries = []
        elif not isinstance(root, _Box) or not root.children:
            return None
        elif push.layout == "self_describing":
            entries = _self_describing(root, reg, push)
        elif push.layout == "interleaved":
            entries = _interleaved(root, reg, push)
        elif push.layout == "positional":
            entries = _positional(root, reg, push)
        else:
            return None
        keys = [e[0] for e in entries]
        if len(set(keys)) != len(keys) or keys != list(push.values):
            return None
        run = build_run(body, root, push, entries)
    except (_Unsupported, IndexError, KeyError, struct.error, DecodeError, SyntaxError, RecursionError,
            MemoryError, ValueError):
        return None
    found = run(body, 0)
    if found is None or found[0] != tree or exact(found[1]) != exact(push):
        return None
    return run


def exact(push: PushValues) -> tuple[Any, ...]:
    """Every field, with the Decimals' digits and exponents (``==`` alone says 1.0 == 1.00)."""
    return (push.layout, push.profile, push.manufacturer, push.list_version,
            [(k, v.obis, type(v.value), v.value.as_tuple() if isinstance(v.value, Decimal) else v.value, v.unit,
              v.scaler, type(v.raw), v.raw, v.cosem_datetime) for k, v in push.values.items()])


# -- the per-registry cache --------------------------------------------------------------------------------
def lookup(buf: bytes, pos: int, reg: ProfileRegistry) -> tuple[Data, PushValues] | None:
    """The compiled path for the body ``buf[pos:]``, or ``None`` (no shape of its length matches)."""
    shapes = reg.shapes.get(len(buf) - pos)
    if shapes is not None:
        for run in shapes:
            found = run(buf, pos)
            if found is not None:
                return found
    return None


def learn(buf: bytes, pos: int, tree: Data, push: PushValues, reg: ProfileRegistry) -> None:
    """Compile and keep the shape of a body the general path decoded. A body length is compiled from its
    second miss on (a one-off body costs nothing more) and at most ``MAX_ATTEMPTS_PER_LENGTH`` times (so
    bodies whose skeleton never repeats, e.g. a changing list version, stop costing compilations)."""
    if not reg.compile_shapes:
        return
    length = len(buf) - pos
    misses, compiles = reg.shape_misses, reg.shape_compiles
    if len(misses) >= 8 * MAX_SHAPES:  # bodies of ever new lengths: forget them, start again
        misses.clear()
        compiles.clear()
    missed = misses[length] = misses.get(length, 0) + 1
    attempts = compiles.get(length, 0)
    if missed < 2 or attempts >= MAX_ATTEMPTS_PER_LENGTH:
        return
    compiles[length] = attempts + 1
    run = compile_shape(buf, pos, tree, push, reg)
    if run is None:
        return
    shapes = reg.shapes
    if sum(len(s) for s in shapes.values()) >= MAX_SHAPES:
        shapes.clear()  # start again (a head end sees a few meter types; this is not reached normally)
    shapes[length] = (run, *shapes.get(length, ())[:MAX_PER_LENGTH - 1])
