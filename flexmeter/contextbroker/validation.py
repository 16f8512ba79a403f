"""Turning request JSON into stored attributes, with Orion's checks and error descriptions.

Orion's rules: identifiers (entity id/type, attribute and metadata names and types) are 1..256 printable
ASCII characters without ``<>"'=;()``, whitespace, ``&?/#``; string values must not contain ``<>"'=;()``;
a missing attribute type defaults from the JSON type of the value (Number, Text, Boolean,
StructuredValue, None); DateTime values are normalized to Orion's rendering.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.model import StoredAttr, StoredMetadata
from flexmeter.contextbroker.timeutil import normalize_iso, posix_from_iso

MAX_ID_LEN = 256
_COMMON_FORBIDDEN = frozenset('<>"\'=;()')
_ID_FORBIDDEN_RE = re.compile(r"[^!-~]|[<>\"'=;()?/#&]")  # printable ASCII only, minus Orion's set
DATE_TYPES = frozenset({"DateTime", "ISO8601"})
BUILTIN_ATTR_NAMES = frozenset({"dateCreated", "dateModified", "dateExpires"})
BUILTIN_METADATA_NAMES = frozenset({"dateCreated", "dateModified", "previousValue", "actionType"})
_ATTR_KEYS = frozenset({"type", "value", "metadata"})


def has_forbidden_id_chars(text: str) -> bool:
    return _ID_FORBIDDEN_RE.search(text) is not None


def has_forbidden_chars(text: str) -> bool:
    return not _COMMON_FORBIDDEN.isdisjoint(text)


_KNOWN_GOOD: set[str] = set()  # identifiers already validated (names and types repeat on every update)
_KNOWN_GOOD_MAX = 200_000


def check_identifier(value: Any, what: str) -> str:
    """Validate an identifier (``what`` is e.g. "entity id", "attribute name"); returns it."""
    if type(value) is str and value in _KNOWN_GOOD:
        return value
    if not isinstance(value, str):
        raise BadRequest(f"Invalid JSON type for {what}")
    length = len(value)
    if length == 0:
        raise BadRequest(f"{what} length: 0, min length supported: 1")
    if length > MAX_ID_LEN:
        raise BadRequest(f"{what} length: {length}, max length supported: {MAX_ID_LEN}")
    if has_forbidden_id_chars(value):
        raise BadRequest(f"Invalid characters in {what}")
    if len(_KNOWN_GOOD) < _KNOWN_GOOD_MAX:
        _KNOWN_GOOD.add(value)
    return value


def check_uri_id(value: str, what: str) -> str:
    """An identifier taken from the URL path or query (already decoded)."""
    if len(value) > MAX_ID_LEN:
        raise BadRequest(f"{what} length: {len(value)}, max length supported: {MAX_ID_LEN}")
    if has_forbidden_id_chars(value):
        raise BadRequest("invalid character in URI")
    return value


def default_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if value is None:
        return "None"
    return "StructuredValue"


MAX_DEPTH = 100  # nesting of compound values; deeper JSON could not be stored or rendered safely


def _check_value(value: Any, what: str) -> None:
    """Forbidden characters in string leaves of a value (also inside compound values), nesting depth."""
    if isinstance(value, str):
        if has_forbidden_chars(value):
            raise BadRequest(f"Invalid characters in {what}")
        return
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"{what} nested deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, str):
                if has_forbidden_chars(child):
                    raise BadRequest(f"Invalid characters in {what}")
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))


@functools.lru_cache(maxsize=8192)
def _normalized_date(text: str) -> str | None:
    try:
        return normalize_iso(text)
    except ValueError:
        return None


def _date_value(type_name: str, value: Any) -> Any:
    if type_name in DATE_TYPES and isinstance(value, str):
        normalized = _normalized_date(value)
        if normalized is None:
            raise BadRequest("date has invalid format")
        return normalized
    return value


_KNOWN_METADATA: dict[tuple[str, str, str], StoredMetadata] = {}
"""Validated text metadata by (name, type, value): units and timestamps repeat on every update, and a stored
metadata dict is never mutated, so one instance serves them all."""
_KNOWN_METADATA_MAX = 50_000


def parse_metadata(raw: Any) -> dict[str, StoredMetadata]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest("metadata must be a JSON object")
    out: dict[str, StoredMetadata] = {}
    for name, md in raw.items():
        if type(md) is dict and len(md) == 2:
            type_name, value = md.get("type"), md.get("value")
            if type(type_name) is str and type(value) is str:
                known = _KNOWN_METADATA.get((name, type_name, value))
                if known is not None:
                    out[name] = known
                    continue
        check_identifier(name, "metadata name")
        if name in BUILTIN_METADATA_NAMES:
            continue  # builtin metadata are computed, never stored from a request
        if isinstance(md, dict):
            value = md.get("value")
            type_name = md.get("type")
            if type_name is None:
                type_name = default_type(value)
            else:
                check_identifier(type_name, "metadata type")
            for key in md:
                if key not in ("type", "value"):
                    raise BadRequest("unrecognized property for metadata")
        else:
            raise BadRequest("metadata must be a JSON object")
        _check_value(value, "metadata value")
        parsed: StoredMetadata = {"type": type_name, "value": _date_value(type_name, value)}
        out[name] = parsed
        if type(value) is str and type(md.get("type")) is str and len(md) == 2:
            if len(_KNOWN_METADATA) >= _KNOWN_METADATA_MAX:
                _KNOWN_METADATA.clear()  # bounded: timestamps make most entries single-use
            _KNOWN_METADATA[(name, type_name, value)] = parsed
    return out


def parse_attr(name: str, raw: Any, now: float, *, key_values: bool = False,
               check_name: bool = True) -> StoredAttr:
    """One attribute of a request (normalized object, or a bare value with ``keyValues``)."""
    if check_name:
        check_identifier(name, "attribute name")
    if key_values:
        _check_value(raw, "attribute value")
        return {"type": default_type(raw), "value": raw, "metadata": {}, "creDate": now, "modDate": now}
    if not isinstance(raw, dict):
        raise BadRequest("attribute must be a JSON object, unless keyValues option is used")
    if not _ATTR_KEYS.issuperset(raw):
        raise BadRequest("unrecognized property for context attribute")
    value = raw.get("value")
    type_name = raw.get("type")
    if type_name is None:
        type_name = default_type(value)
    else:
        check_identifier(type_name, "attribute type")
    if type(value) is str:
        if not _COMMON_FORBIDDEN.isdisjoint(value):
            raise BadRequest("Invalid characters in attribute value")
        if type_name in DATE_TYPES:
            value = _date_value(type_name, value)
    elif isinstance(value, dict | list):
        _check_value(value, "attribute value")
    raw_metadata = raw.get("metadata")
    metadata = parse_metadata(raw_metadata) if raw_metadata else {}
    return {"type": type_name, "value": value, "metadata": metadata, "creDate": now, "modDate": now}


def parse_attrs(body: dict[str, Any], now: float, *, key_values: bool = False,
                skip: frozenset[str] = frozenset()) -> tuple[dict[str, StoredAttr], float | None]:
    """Every attribute of a body except ``skip`` keys; returns (attrs, dateExpires or None)."""
    attrs: dict[str, StoredAttr] = {}
    expires: float | None = None
    for name, raw in body.items():
        if name in skip:
            continue
        attr = parse_attr(name, raw, now, key_values=key_values)
        if name == "dateExpires":
            expires = expires_from_attr(attr)
            continue
        if name in BUILTIN_ATTR_NAMES:
            continue
        attrs[name] = attr
    return attrs, expires


def expires_from_attr(attr: StoredAttr) -> float:
    value = attr["value"]
    if attr["type"] not in DATE_TYPES and not isinstance(value, str):
        raise BadRequest("date has invalid format")
    if not isinstance(value, str):
        raise BadRequest("date has invalid format")
    try:
        return posix_from_iso(value)
    except ValueError:
        raise BadRequest("date has invalid format") from None


def parse_entity_head(body: Any) -> tuple[str, str]:
    """The id and type of an entity body (type defaults to Orion's ``Thing``)."""
    if not isinstance(body, dict):
        raise BadRequest("not a JSON object")
    if "id" not in body:
        raise BadRequest("entity id length: 0, min length supported: 1")
    entity_id = check_identifier(body["id"], "entity id")
    entity_type = body.get("type", "Thing")
    check_identifier(entity_type, "entity type")
    return entity_id, entity_type
