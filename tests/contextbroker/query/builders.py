"""Build StoredEntity values for the query tests (normalized form, as the store keeps them)."""

from __future__ import annotations

from typing import Any

from flexmeter.contextbroker.model import StoredAttr, StoredEntity, StoredMetadata


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


def attr(
    value: Any,
    type_: str | None = None,
    metadata: dict[str, Any] | None = None,
    cre: float = 1000.0,
    mod: float = 2000.0,
) -> StoredAttr:
    """An attribute; metadata given as {name: value} or {name: (type, value)}."""
    md: dict[str, StoredMetadata] = {}
    for name, item in (metadata or {}).items():
        if isinstance(item, tuple):
            md[name] = {"type": item[0], "value": item[1]}
        else:
            md[name] = {"type": default_type(item), "value": item}
    return {
        "type": type_ or default_type(value),
        "value": value,
        "metadata": md,
        "creDate": cre,
        "modDate": mod,
    }


def entity(
    eid: str = "E1",
    etype: str = "Thing",
    *,
    cre: float = 1000.0,
    mod: float = 2000.0,
    exp: float | None = None,
    **attrs: Any,
) -> StoredEntity:
    """An entity; each keyword is an attribute, given as a plain value or as ``attr(...)``."""
    built: dict[str, StoredAttr] = {}
    for name, value in attrs.items():
        if isinstance(value, dict) and {"type", "value", "metadata", "creDate"} <= value.keys():
            built[name] = value  # type: ignore[assignment]
        else:
            built[name] = attr(value)
    return {
        "id": eid,
        "type": etype,
        "servicePath": "/",
        "attrs": built,
        "creDate": cre,
        "modDate": mod,
        "expDate": exp,
    }
