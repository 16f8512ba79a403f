"""Orion's simple query language, geographical queries and ``orderBy`` for the embedded broker.

Pure functions, no I/O: the store/API and the subscription engine parse once, then call ``matches``
per entity (the expressions are compiled into closures, so evaluation is cheap).

Surface::

    parse_q(text) -> EntityFilter          # ``q=temperature>20;status==on``
    parse_mq(text) -> EntityFilter         # ``mq=temperature.accuracy<0.5``
    parse_geo(georel, geometry, coords, subscription=False) -> GeoFilter | None
    parse_condition(q=, mq=, georel=, geometry=, coords=, subscription=False) -> Condition  # ANDed
    parse_order_by(text) -> OrderSpec
    sort_entities(entities, spec, geo=None) -> list[StoredEntity]

Every parse error raises :class:`flexmeter.contextbroker.errors.BadRequest` with Orion's description
(e.g. "empty right-hand-side in q-item", "Invalid query: Too few coordinates for polygon"), so the API
can render it as is. ``matches`` never raises: a value of the wrong type simply does not match
(type-strict, as Orion). ``EntityFilter.matches`` and ``Condition.matches`` are plain closures.

Entities are :class:`flexmeter.contextbroker.model.StoredEntity` (normalized attributes, POSIX times).
``dateCreated``/``dateModified`` in ``q`` and ``orderBy`` read the entity's ``creDate``/``modDate``;
``dateExpires`` reads a ``dateExpires`` attribute if the store keeps one, else ``expDate``.
``DateTime`` attribute values may be stored as ISO 8601 strings: they compare and sort as dates.
"""

from flexmeter.contextbroker.query.condition import Condition, parse_condition
from flexmeter.contextbroker.query.expression import EntityFilter, parse_mq, parse_q
from flexmeter.contextbroker.query.geo import GeoFilter, parse_geo
from flexmeter.contextbroker.query.order import OrderKey, OrderSpec, parse_order_by, sort_entities

__all__ = [
    "Condition",
    "EntityFilter",
    "GeoFilter",
    "OrderKey",
    "OrderSpec",
    "parse_condition",
    "parse_geo",
    "parse_mq",
    "parse_order_by",
    "parse_q",
    "sort_entities",
]
