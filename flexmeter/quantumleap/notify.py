"""``POST /v2/notify``: an Orion notification (normalized) to one row per entity."""

from __future__ import annotations

import json
from typing import Any

from flexmeter.quantumleap.errors import InvalidHeaderValue, Problem
from flexmeter.quantumleap.model import EntityRow
from flexmeter.quantumleap.timeindex import now_ms, select_time_index

SUCCESS = "Notification successfully processed"


def parse_notification(body: bytes) -> list[dict[str, Any]]:
    """The ``data`` entities; 400 problem for invalid JSON, a missing ``data``, an entity without id/type."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise Problem(f"{type(payload).__name__} is not of type 'object'")
    if "data" not in payload:
        raise Problem("'data' is a required property")
    data = payload["data"]
    if not isinstance(data, list):
        raise Problem("'data' is not of type 'array'")
    for position, entity in enumerate(data):
        if not isinstance(entity, dict):
            raise Problem(f"data[{position}] is not of type 'object'")
        for key in ("id", "type"):
            if key not in entity:
                raise Problem(f"'{key}' is a required property - 'data/{position}'")
            if not isinstance(entity[key], str) or not entity[key]:
                raise Problem(f"'{key}' must be a non-empty string - 'data/{position}'")
    return data


def _attributes(entity: dict[str, Any]) -> tuple[dict[str, tuple[str | None, Any]], bool]:
    """attribute -> (NGSI type, value), and whether any attribute carries a value."""
    attrs: dict[str, tuple[str | None, Any]] = {}
    has_value = False
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
    return attrs, has_value


def to_rows(
    entities: list[dict[str, Any]], service_path_header: str | None, time_index_attr: str | None
) -> tuple[list[EntityRow], int]:
    """Rows (one per entity with at least one value) and how many entities carried no value at all.

    ``Fiware-ServicePath`` is one path for every entity or a comma list with one path per entity.
    """
    paths = [p.strip() for p in (service_path_header or "/").split(",")]
    if len(paths) not in (1, len(entities)):
        raise InvalidHeaderValue(
            f"Fiware-ServicePath {service_path_header!r}: multiple service paths are allowed only if their "
            f"number matches the number of entities ({len(entities)})"
        )
    received = now_ms()
    rows = []
    empty = 0
    for position, entity in enumerate(entities):
        attrs, has_value = _attributes(entity)
        if not has_value:
            empty += 1
            continue
        path = paths[position if len(paths) > 1 else 0] or "/"
        rows.append(
            EntityRow(
                entity_id=entity["id"],
                entity_type=entity["type"],
                time_index=select_time_index(entity, time_index_attr, received),
                service_path=path,
                attrs=attrs,
                original=entity,
            )
        )
    return rows, empty
