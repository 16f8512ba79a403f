"""``POST /v2/notify``: an Orion notification (normalized) to one row per entity.

The hot path of the service: the body is parsed with orjson (the stdlib parser only as a fallback for
what orjson refuses but Python's JSON accepts: NaN, integers beyond 64 bits), and each entity is read in
one pass that collects its attributes, whether any carries a value, and its ``TimeInstant``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from flexmeter.quantumleap.errors import InvalidHeaderValue, Problem
from flexmeter.quantumleap.model import EntityRow
from flexmeter.quantumleap.timeindex import BadInstant, now_ms, parse_instant, select_time_index

SUCCESS = "Notification successfully processed"


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Problem(f"Request body is not valid JSON: {exc}") from fast_error


def parse_notification(body: bytes) -> list[dict[str, Any]]:
    """The ``data`` entities; 400 problem for invalid JSON, a missing ``data``, an entity without id/type."""
    payload = _loads(body)
    if type(payload) is not dict:
        raise Problem(f"{type(payload).__name__} is not of type 'object'")
    if "data" not in payload:
        raise Problem("'data' is a required property")
    data = payload["data"]
    if type(data) is not list:
        raise Problem("'data' is not of type 'array'")
    for position, entity in enumerate(data):
        if type(entity) is not dict:
            raise Problem(f"data[{position}] is not of type 'object'")
        entity_id, entity_type = entity.get("id"), entity.get("type")
        if type(entity_id) is str and type(entity_type) is str and entity_id and entity_type:
            continue  # the common case: both present, non-empty strings
        for key in ("id", "type"):
            if key not in entity:
                raise Problem(f"'{key}' is a required property - 'data/{position}'")
            if not isinstance(entity[key], str) or not entity[key]:
                raise Problem(f"'{key}' must be a non-empty string - 'data/{position}'")
    return data


def _attributes(entity: dict[str, Any]) -> tuple[dict[str, tuple[str | None, Any]], bool, Any]:
    """attribute -> (NGSI type, value), whether any attribute carries a value, the ``TimeInstant`` value."""
    attrs: dict[str, tuple[str | None, Any]] = {}
    has_value = False
    time_instant = None
    for name, attr in entity.items():
        if name == "id" or name == "type":
            continue
        if type(attr) is dict:
            ngsi_type, value = attr.get("type"), attr.get("value")
            if ngsi_type is None and value is None:
                continue  # QuantumLeap drops attributes with neither type nor value
            attrs[name] = (ngsi_type if type(ngsi_type) is str else None, value)
        else:
            value = attr
            attrs[name] = (None, value)  # keyValues notification
        if value is not None and value != "":
            has_value = True
        if name == "TimeInstant":
            time_instant = value
    return attrs, has_value, time_instant


def to_rows(
    entities: list[dict[str, Any]], service_path_header: str | None, time_index_attr: str | None
) -> tuple[list[EntityRow], int]:
    """Rows (one per entity with at least one value) and how many entities carried no value at all.

    ``Fiware-ServicePath`` is one path for every entity or a comma list with one path per entity.
    """
    if service_path_header is None or "," not in service_path_header:
        paths = [(service_path_header or "/").strip() or "/"]
    else:
        paths = [p.strip() or "/" for p in service_path_header.split(",")]
        if len(paths) != len(entities):
            raise InvalidHeaderValue(
                f"Fiware-ServicePath {service_path_header!r}: multiple service paths are allowed only if their "
                f"number matches the number of entities ({len(entities)})"
            )
    single_path = paths[0] if len(paths) == 1 else None
    received = now_ms()
    rows = []
    empty = 0
    for position, entity in enumerate(entities):
        attrs, has_value, time_instant = _attributes(entity)
        if not has_value:
            empty += 1
            continue
        time_index: int | None = None
        if not time_index_attr and type(time_instant) is str:
            try:
                time_index = parse_instant(time_instant)
            except BadInstant:
                time_index = None
        if time_index is None:
            time_index = select_time_index(entity, time_index_attr, received)
        rows.append(
            EntityRow(
                entity["id"],
                entity["type"],
                time_index,
                single_path if single_path is not None else paths[position],
                attrs,
                entity,
            )
        )
    return rows, empty
