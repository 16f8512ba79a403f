"""``orderBy``: sort keys across value types in the order Orion (MongoDB) uses.

Classes, ascending: missing < null < numbers < strings < objects < arrays < booleans < dates. Within a
class: numbers numerically, strings by code point (= MongoDB's binary UTF-8 order), objects field by
field, arrays element by element, false < true, dates chronologically. ``DateTime`` attributes and the
builtin ``dateCreated``/``dateModified``/``dateExpires`` are dates. Descending (``!name``) reverses the
whole order (missing last). Sorting is stable, so ties keep the store's order (creation order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flexmeter.contextbroker.errors import BadRequest
from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.query.geo import GeoFilter
from flexmeter.contextbroker.query.values import DATE_TYPES, parse_date

GEO_DISTANCE = "geo:distance"
_MISSING, _NULL, _NUMBER, _STRING, _OBJECT, _ARRAY, _BOOL, _DATE = range(8)

SortKey = tuple[int, Any]


@dataclass(frozen=True)
class OrderKey:
    """One ``orderBy`` item: an attribute name, ``id``, ``type``, ``dateCreated``, ``dateModified``,
    ``dateExpires`` or ``geo:distance``; ``descending`` when written with a leading ``!``."""

    name: str
    descending: bool = False


@dataclass(frozen=True)
class OrderSpec:
    keys: tuple[OrderKey, ...]

    @property
    def uses_distance(self) -> bool:
        return any(key.name == GEO_DISTANCE for key in self.keys)


def parse_order_by(text: str) -> OrderSpec:
    """Parse ``orderBy`` (comma-separated keys, ``!`` for descending). Raises BadRequest on an empty
    item or a repeated key (Orion answers a 400 for duplicates, see fiware-orion#4664)."""
    keys: list[OrderKey] = []
    seen: set[str] = set()
    for raw in text.split(","):
        item = raw.strip()
        descending = item.startswith("!")
        name = item[1:].strip() if descending else item
        if not name:
            raise BadRequest("Empty item in orderBy")
        if name in seen:
            raise BadRequest(f"Duplicated attribute in orderBy: {name}")
        seen.add(name)
        keys.append(OrderKey(name, descending))
    return OrderSpec(tuple(keys))


def value_key(value: Any) -> SortKey:
    """The sort key of a JSON value (null, number, string, object, array, boolean)."""
    cls = value.__class__
    if value is None:
        return (_NULL, 0)
    if cls is bool:
        return (_BOOL, int(value))
    if cls is int or cls is float:
        return (_NUMBER, value)
    if cls is str:
        return (_STRING, value)
    if cls is dict:
        return (_OBJECT, tuple((k, value_key(v)) for k, v in value.items()))
    if cls is list:
        return (_ARRAY, tuple(value_key(v) for v in value))
    return (_STRING, str(value))


def _date_key(seconds: float | None) -> SortKey:
    return (_MISSING, 0) if seconds is None else (_DATE, seconds)


def _key_function(name: str, geo: GeoFilter | None) -> Callable[[StoredEntity], SortKey]:
    if name == "id":
        return lambda e: (_STRING, e["id"])
    if name == "type":
        return lambda e: (_STRING, e["type"])
    if name == "dateCreated":
        return lambda e: _date_key(e["creDate"])
    if name == "dateModified":
        return lambda e: _date_key(e["modDate"])
    if name == GEO_DISTANCE:
        if geo is None or not geo.is_near:
            # Orion leaves the order to MongoDB's $near, so without a near query it is unspecified:
            # keep the input (store) order.
            return lambda e: (_MISSING, 0)
        near = geo

        def distance_key(e: StoredEntity) -> SortKey:
            d = near.distance(e)
            return (_MISSING, 0) if d is None else (_NUMBER, d)

        return distance_key

    def attr_key(e: StoredEntity) -> SortKey:
        attr = e["attrs"].get(name)
        if attr is None:
            if name == "dateExpires":
                return _date_key(e.get("expDate"))
            return (_MISSING, 0)
        value = attr["value"]
        if attr["type"] in DATE_TYPES and value.__class__ is str:
            seconds = parse_date(value)
            if seconds is not None:
                return (_DATE, seconds)
        return value_key(value)

    return attr_key


def sort_entities(
    entities: list[StoredEntity], spec: OrderSpec, geo: GeoFilter | None = None
) -> list[StoredEntity]:
    """A new list sorted by ``spec``; stable, so ties keep the input order.

    ``geo:distance`` sorts by distance to the reference point of ``geo`` when it is a near query
    (nearest first; ``!geo:distance`` farthest first, an extension); otherwise it leaves the order as is
    (Orion then returns MongoDB's unspecified order and does not fail).
    """
    result = list(entities)
    for key in reversed(spec.keys):
        result.sort(key=_key_function(key.name, geo), reverse=key.descending)
    return result
