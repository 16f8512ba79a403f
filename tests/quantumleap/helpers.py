"""Small builders for notified entities."""

from __future__ import annotations

from typing import Any


def meter(entity_id: str, at: str | None = None, entity_type: str = "Meter", **attrs: Any) -> dict[str, Any]:
    """A normalized entity; ``at`` becomes its TimeInstant; numbers are ``Number`` attributes."""
    entity: dict[str, Any] = {"id": entity_id, "type": entity_type}
    if at is not None:
        entity["TimeInstant"] = {"type": "DateTime", "value": at}
    for name, value in attrs.items():
        if isinstance(value, dict) and "type" in value:
            entity[name] = value
        elif isinstance(value, bool):
            entity[name] = {"type": "Boolean", "value": value}
        elif isinstance(value, int | float):
            entity[name] = {"type": "Number", "value": value}
        else:
            entity[name] = {"type": "Text", "value": value}
    return entity


def hours(start_hour: int, count: int, day: str = "2024-03-01") -> list[str]:
    return [f"{day}T{h:02d}:00:00.000Z" for h in range(start_hour, start_hour + count)]
