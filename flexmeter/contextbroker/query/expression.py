"""``q`` and ``mq``: Orion's simple query language, parsed once and compiled into closures.

Parsing follows Orion's own rules and error descriptions (its ``StringFilter``): statements split on
``;``; the operator is the first of ``==``, ``~=``, ``!=``, ``>=``, ``<=``, ``<``, ``>``, ``:`` found
outside single quotes; a right-hand side containing ``..`` is a range, one containing ``,`` a list;
a literal is a quoted string, a number, an ISO 8601 date, ``true``/``false``, ``null``, or else a string.

Matching follows the MongoDB queries Orion builds for ``GET /v2/entities`` (one semantics for queries
and subscriptions):

- type-strict: ``10`` matches numbers only, ``'10'`` strings only; dates compare as numbers (Orion stores
  ``DateTime`` values as POSIX seconds), so ``ts>2024-01-01`` matches ``DateTime`` attributes;
- a binary statement needs the target property to exist, ``!=`` included;
- an array value matches ``==``, ``>``… and ``~=`` when any element does, and ``!=`` when none does;
  a range ``a..b`` is ``>=a`` and ``<=b`` each satisfied by some element (MongoDB's reading);
- a path ``a.b.c`` walks into object values (and into the objects of an array, as MongoDB does);
- ``dateCreated``/``dateModified`` are the entity's timestamps, ``dateExpires`` its expiration;
  in ``mq``, ``attr.dateCreated``/``attr.dateModified`` are the attribute's timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.query.values import DATE_TYPES, parse_date, parse_number

Predicate = Callable[[StoredEntity], bool]
Test = Callable[[Any], bool]
Kind = Literal["q", "mq"]

# Orion's forbiddenChars() set; the left-hand side may contain quotes (they delimit path tokens).
_FORBIDDEN = frozenset("<>\"'=;()")
_FORBIDDEN_LHS = _FORBIDDEN - {"'"}
_WS = " \t\n\r\f\v"

EXISTS, NOT_EXISTS = "exists", "notExists"
_OP_NAMES = {
    "==": "Equals",
    "!=": "Differs",
    ">": "GreaterThan",
    "<": "LessThan",
    ">=": "GreaterThanOrEqual",
    "<=": "LessThanOrEqual",
    "~=": "MatchPattern",
}
_TYPE_NAMES = {"string": "String", "number": "Number", "date": "Date", "bool": "Bool", "null": "Null"}


class EntityFilter:
    """A compiled ``q`` or ``mq`` expression: the AND of its ``;``-separated statements.

    - ``matches(entity) -> bool``: True when every statement holds (a plain closure, so calling it costs
      one function call);
    - ``text``: the expression as given; ``kind``: ``"q"`` or ``"mq"``;
    - ``attrs``: the attribute names the statements refer to (first path token), for subscriptions.
    """

    __slots__ = ("attrs", "kind", "matches", "text")

    matches: Predicate

    def __init__(self, text: str, kind: Kind, predicate: Predicate, attrs: frozenset[str]) -> None:
        self.text = text
        self.kind = kind
        self.attrs = attrs
        self.matches = predicate

    def __repr__(self) -> str:
        return f"EntityFilter({self.kind}={self.text!r})"


def parse_q(text: str) -> EntityFilter:
    """Parse and compile a ``q`` expression; paths after the attribute go into its (object) value.

    An empty ``text`` is an error ("empty q"), as in Orion; callers treat an absent or empty ``q`` URI
    parameter as no filter. Raises :class:`BadRequest` with Orion's description.
    """
    return _parse(text, "q")


def parse_mq(text: str) -> EntityFilter:
    """Parse and compile an ``mq`` expression: ``attr.metadata`` then an optional path into the metadata
    value. Raises :class:`BadRequest` with Orion's description."""
    return _parse(text, "mq")


# ---------------------------------------------------------------------------------------------- parsing


def _parse(text: str, kind: Kind) -> EntityFilter:
    if text == "" or text == ";":
        raise BadRequest("empty q")
    if ";;" in text:
        raise BadRequest("empty q-item")
    body = text[:-1] if text.endswith(";") else text
    body = body.strip(_WS)
    if not body:
        raise BadRequest("empty q")
    if body.endswith(";"):
        raise BadRequest("empty q-item")
    statements: list[_Statement] = []
    for raw in body.split(";"):
        if raw == "":
            continue  # a leading ';' (Orion tokenizes with strtok, which skips it)
        item = raw.strip(_WS)
        if not item:
            raise BadRequest("empty q-item (only whitespace)")
        statements.append(_parse_statement(item, kind))
    if kind == "mq":
        for st in statements:
            if not st.attr:
                raise BadRequest("no attribute name - not valid for metadata filters")
            if not st.metadata:
                raise BadRequest("no metadata name - not valid for metadata filters")
    predicates = [_compile(st, kind) for st in statements]
    return EntityFilter(text, kind, _all(predicates), frozenset(st.attr for st in statements))


class _Statement:
    __slots__ = ("attr", "left", "metadata", "op", "path", "rhs", "rhs_form")

    def __init__(self) -> None:
        self.left = ""
        self.op = EXISTS
        self.attr = ""
        self.metadata = ""
        self.path: tuple[str, ...] = ()
        self.rhs_form = "single"  # single | list | range
        self.rhs: Any = None  # (type, value) | (type, tuple) | (type, lo, hi) | compiled regex


def _find_op(expr: str) -> tuple[str, str, str]:
    """(operator, lhs, rhs) of one statement; unary statements have rhs == lhs."""
    if expr.startswith("!") and not expr.startswith("!="):
        return NOT_EXISTS, expr[1:], expr[1:]
    if expr.startswith("!="):
        return "!=", "", expr[2:]
    quoted = False
    n = len(expr)
    for i, ch in enumerate(expr):
        if ch == "'":
            quoted = not quoted
            continue
        if quoted:
            continue
        nxt = expr[i + 1] if i + 1 < n else ""
        if nxt == "=" and ch in "=~!><":
            return {"=": "==", "~": "~=", "!": "!=", ">": ">=", "<": "<="}[ch], expr[:i], expr[i + 2 :]
        if ch in "<>":
            return ch, expr[:i], expr[i + 1 :]
        if ch == ":":
            return "==", expr[:i], expr[i + 1 :]
    return EXISTS, expr, expr


def _split_path(lhs: str) -> list[str]:
    """Split on '.' outside single quotes, dropping the quotes (``'a.b'.c`` is ``["a.b", "c"]``)."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in lhs:
        if ch == "'":
            quoted = not quoted
        elif ch == "." and not quoted:
            tokens.append("".join(current))
            current = []
        else:
            current.append(ch)
    tokens.append("".join(current))
    return tokens


def _parse_statement(item: str, kind: Kind) -> _Statement:
    st = _Statement()
    op, lhs, rhs = _find_op(item)
    lhs, rhs = lhs.strip(_WS), rhs.strip(_WS)
    st.op = op
    if not lhs and op not in (EXISTS, NOT_EXISTS):
        raise BadRequest("empty left-hand-side in q-item")
    if any(ch in _FORBIDDEN_LHS for ch in lhs):
        raise BadRequest(f"invalid character found in URI param /{kind}/")
    st.left = lhs
    tokens = _split_path(lhs)
    st.attr = tokens[0]
    if kind == "mq":
        st.metadata = tokens[1] if len(tokens) > 1 else ""
        st.path = tuple(tokens[2:])
    else:
        st.path = tuple(tokens[1:])
    if not rhs:
        raise BadRequest("empty right-hand-side in q-item")
    if op in (EXISTS, NOT_EXISTS):
        if kind == "mq" and not st.metadata:
            raise BadRequest("no metadata in right-hand-side of q-item")
    elif op == "~=":
        if any(ch in _FORBIDDEN for ch in rhs):
            raise BadRequest("forbidden characters in String Filter")
        try:
            st.rhs = re.compile(rhs)
        except (re.error, RecursionError, OverflowError) as exc:
            raise BadRequest(f"error compiling filter regex: '{rhs}'") from exc
    elif ".." in rhs:
        _parse_range(st, rhs)
    elif "," in rhs:
        _parse_list(st, rhs)
    else:
        value_type, value = _literal(rhs, op)
        if op not in ("==", "!=") and value_type not in ("number", "date", "string"):
            raise BadRequest(
                f"values of type /{_TYPE_NAMES[value_type]}/ not supported for operator /{_OP_NAMES[op]}/"
            )
        st.rhs = (value_type, value)
    return st


def _literal(text: str, op: str) -> tuple[str, Any]:
    """One right-hand-side value as (type, value); dates become POSIX seconds."""
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise BadRequest("non-terminated forced string")
        inner = text[1:-1]
        if "'" in inner:
            raise BadRequest("quote in forced string")
        result: tuple[str, Any] = ("string", inner)
    elif (number := parse_number(text)) is not None:
        return "number", number
    elif (date := parse_date(text)) is not None:
        return "date", date
    elif text == "true":
        return "bool", True
    elif text == "false":
        return "bool", False
    elif text == "null":
        return "null", None
    else:
        result = ("string", text)
    if op != "~=" and any(ch in _FORBIDDEN for ch in result[1]):
        raise BadRequest("forbidden characters in String Filter")
    return result


def _parse_range(st: _Statement, rhs: str) -> None:
    if st.op not in ("==", "!="):
        raise BadRequest("ranges only valid for equal and not equal ops")
    low_text, _, high_text = rhs.partition("..")
    low_text, high_text = low_text.strip(_WS), high_text.strip(_WS)
    if not low_text or not high_text:
        raise BadRequest("empty item in range")
    low_type, low = _literal(low_text, st.op)
    if low_type not in ("string", "number", "date"):
        raise BadRequest("invalid data type for /range-from/")
    high_type, high = _literal(high_text, st.op)
    if high_type not in ("string", "number", "date"):
        raise BadRequest("invalid data type for /range-to/")
    if high_type != low_type:
        raise BadRequest("invalid range: types mixed")
    st.rhs_form = "range"
    st.rhs = (low_type, low, high)


def _parse_list(st: _Statement, rhs: str) -> None:
    if st.op not in ("==", "!="):
        raise BadRequest("lists only valid for equal and not equal ops")
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in rhs:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    list_type = ""
    values: list[Any] = []
    for raw in items:
        text = raw.strip(_WS)
        if not text:
            raise BadRequest("empty item in list")
        value_type, value = _literal(text, st.op)
        if value_type not in ("string", "number", "date") or (list_type and value_type != list_type):
            raise BadRequest("invalid JSON value type in list")
        list_type = value_type
        values.append(value)
    st.rhs_form = "list"
    st.rhs = (list_type, tuple(values))


# -------------------------------------------------------------------------------------------- compiling


def _scalar_test(st: _Statement) -> Test:
    """The test of one candidate value (one element when the target value is an array)."""
    op = st.op
    if op == "~=":
        search = st.rhs.search
        return lambda c: c.__class__ is str and search(c) is not None
    if st.rhs_form == "list":
        list_type, values = st.rhs
        members = frozenset(values)
        if list_type == "string":
            return lambda c: c.__class__ is str and c in members
        return lambda c: (c.__class__ is int or c.__class__ is float) and c in members
    value_type, value = st.rhs
    if value_type == "null":
        return lambda c: c is None
    if value_type == "bool":
        return lambda c: c is value
    if op in ("==", "!="):
        if value_type == "string":
            return lambda c: c.__class__ is str and c == value
        return lambda c: (c.__class__ is int or c.__class__ is float) and c == value
    if value_type == "string":
        if op == ">":
            return lambda c: c.__class__ is str and c > value
        if op == "<":
            return lambda c: c.__class__ is str and c < value
        if op == ">=":
            return lambda c: c.__class__ is str and c >= value
        return lambda c: c.__class__ is str and c <= value
    if op == ">":
        return lambda c: (c.__class__ is int or c.__class__ is float) and c > value
    if op == "<":
        return lambda c: (c.__class__ is int or c.__class__ is float) and c < value
    if op == ">=":
        return lambda c: (c.__class__ is int or c.__class__ is float) and c >= value
    return lambda c: (c.__class__ is int or c.__class__ is float) and c <= value


def _value_test(st: _Statement) -> Test:
    """The test of a target property value: the value itself or, for an array, any of its elements."""
    if st.rhs_form == "range":
        value_type, low, high = st.rhs
        if value_type == "string":

            def low_ok(c: Any) -> bool:
                return c.__class__ is str and c >= low

            def high_ok(c: Any) -> bool:
                return c.__class__ is str and c <= high
        else:

            def low_ok(c: Any) -> bool:
                return (c.__class__ is int or c.__class__ is float) and c >= low

            def high_ok(c: Any) -> bool:
                return (c.__class__ is int or c.__class__ is float) and c <= high

        def in_range(v: Any) -> bool:
            if v.__class__ is list:
                return any(map(low_ok, v)) and any(map(high_ok, v))
            return low_ok(v) and high_ok(v)

        return in_range

    test = _scalar_test(st)

    def any_of(v: Any) -> bool:
        if test(v):
            return True
        if v.__class__ is list:
            return any(map(test, v))
        return False

    return any_of


def _walk(value: Any, path: tuple[str, ...], i: int, out: list[Any]) -> None:
    """Collect the values at ``path`` (MongoDB dotted-path semantics, one array level deep)."""
    if i == len(path):
        out.append(value)
        return
    key = path[i]
    if value.__class__ is dict:
        if key in value:
            _walk(value[key], path, i + 1, out)
    elif value.__class__ is list:
        if key.isdigit() and int(key) < len(value):
            _walk(value[int(key)], path, i + 1, out)
        for element in value:
            if element.__class__ is dict and key in element:
                _walk(element[key], path, i + 1, out)


def _resolve(value: Any, path: tuple[str, ...]) -> list[Any] | None:
    """The values at ``path`` below ``value``: a quick descent through objects, the full walk on arrays."""
    current = value
    for key in path:
        if current.__class__ is dict:
            if key not in current:
                return None
            current = current[key]
        elif current.__class__ is list:
            out: list[Any] = []
            _walk(value, path, 0, out)
            return out
        else:
            return None
    return [current]


def _stored_value(holder: Any) -> Any:
    """An attribute's or metadata's value; ``DateTime`` strings become POSIX seconds, as Orion stores them."""
    value = holder["value"]
    if value.__class__ is str and holder.get("type") in DATE_TYPES:
        seconds = parse_date(value)
        if seconds is not None:
            return seconds
    return value


Getter = Callable[[StoredEntity], "list[Any] | None"]


def _getter(st: _Statement, kind: Kind) -> Getter:
    """The target property values of an entity, or None/[] when the target property does not exist."""
    name, path = st.attr, st.path
    if kind == "mq":
        md_name = st.metadata

        def get_md(e: StoredEntity) -> list[Any] | None:
            attr = e["attrs"].get(name)
            if attr is None:
                return None
            if md_name == "dateCreated" and "dateCreated" not in attr["metadata"]:
                value: Any = attr.get("creDate")
            elif md_name == "dateModified" and "dateModified" not in attr["metadata"]:
                value = attr.get("modDate")
            else:
                md = attr["metadata"].get(md_name)
                if md is None:
                    return None
                value = _stored_value(md)
            if not path:
                return [value]
            return _resolve(value, path)

        return get_md

    if not path and st.op not in (EXISTS, NOT_EXISTS):
        if name == "dateCreated":
            return lambda e: [e["creDate"]]
        if name == "dateModified":
            return lambda e: [e["modDate"]]
    if not path and name == "dateExpires":

        def get_expires(e: StoredEntity) -> list[Any] | None:
            attr = e["attrs"].get(name)
            if attr is not None:
                return [_stored_value(attr)]
            expires = e.get("expDate")
            return None if expires is None else [expires]

        return get_expires

    def get_attr(e: StoredEntity) -> list[Any] | None:
        attr = e["attrs"].get(name)
        if attr is None:
            return None
        value = _stored_value(attr)
        if not path:
            return [value]
        return _resolve(value, path)

    return get_attr


def _compile(st: _Statement, kind: Kind) -> Predicate:
    op = st.op
    name = st.attr
    simple = kind == "q" and not st.path and name not in ("dateCreated", "dateModified", "dateExpires")

    if op in (EXISTS, NOT_EXISTS):
        if simple or (kind == "q" and not st.path and name in ("dateCreated", "dateModified")):
            # Orion checks the entity's attribute names here: builtin timestamps are not attributes.
            if op == EXISTS:
                return lambda e: name in e["attrs"]
            return lambda e: name not in e["attrs"]
        get = _getter(st, kind)
        if op == EXISTS:
            return lambda e: bool(get(e))
        return lambda e: not get(e)

    test = _value_test(st)
    negate = op == "!="

    if simple:
        # Fast path: a top-level attribute value, the common case (``temperature>20``).
        if negate:

            def differs(e: StoredEntity) -> bool:
                attr = e["attrs"].get(name)
                if attr is None:
                    return False
                value = attr["value"]
                if value.__class__ is str and attr["type"] in DATE_TYPES:
                    value = _stored_value(attr)
                return not test(value)

            return differs

        def matches(e: StoredEntity) -> bool:
            attr = e["attrs"].get(name)
            if attr is None:
                return False
            value = attr["value"]
            if value.__class__ is str and attr["type"] in DATE_TYPES:
                value = _stored_value(attr)
            return test(value)

        return matches

    get = _getter(st, kind)
    if negate:

        def differs_path(e: StoredEntity) -> bool:
            values = get(e)
            if not values:
                return False
            return not any(map(test, values))

        return differs_path

    def matches_path(e: StoredEntity) -> bool:
        values = get(e)
        if not values:
            return False
        if len(values) == 1:
            return test(values[0])
        return any(map(test, values))

    return matches_path


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda e: first(e) and second(e)
    frozen = tuple(predicates)

    def all_of(e: StoredEntity) -> bool:
        for predicate in frozen:  # noqa: SIM110 - a plain loop is faster than all() over a generator
            if not predicate(e):
                return False
        return True

    return all_of
