"""Unit tests of render.py: Orion's normalized/keyValues/values renderings and attrs/metadata filters."""

from __future__ import annotations

from flexmeter.contextbroker.model import StoredEntity
from flexmeter.contextbroker.render import render_attr, render_entity

T0 = 1704067200.0  # 2024-01-01T00:00:00Z


def entity() -> StoredEntity:
    return {
        "id": "E1",
        "type": "Meter",
        "servicePath": "/",
        "creDate": T0,
        "modDate": T0 + 60,
        "expDate": T0 + 3600,
        "attrs": {
            "power": {
                "type": "Number",
                "value": 12.5,
                "creDate": T0,
                "modDate": T0 + 60,
                "metadata": {"unitCode": {"type": "Text", "value": "KWT"}},
            },
            "status": {"type": "Text", "value": "ok", "metadata": {}, "creDate": T0, "modDate": T0},
        },
    }


def test_normalized_default() -> None:
    assert render_entity(entity()) == {
        "id": "E1",
        "type": "Meter",
        "power": {
            "type": "Number",
            "value": 12.5,
            "metadata": {"unitCode": {"type": "Text", "value": "KWT"}},
        },
        "status": {"type": "Text", "value": "ok", "metadata": {}},
    }


def test_key_values_and_values() -> None:
    assert render_entity(entity(), mode="keyValues") == {
        "id": "E1",
        "type": "Meter",
        "power": 12.5,
        "status": "ok",
    }
    assert render_entity(entity(), mode="values") == [12.5, "ok"]
    assert render_entity(entity(), mode="values", attrs=["status", "power"]) == ["ok", 12.5]


def test_builtin_attrs_only_when_asked() -> None:
    out = render_entity(entity(), mode="keyValues", attrs=["dateCreated", "dateModified", "dateExpires"])
    assert out == {
        "id": "E1",
        "type": "Meter",
        "dateCreated": "2024-01-01T00:00:00.000Z",
        "dateModified": "2024-01-01T00:01:00.000Z",
        "dateExpires": "2024-01-01T01:00:00.000Z",
    }
    full = render_entity(entity(), attrs=["*", "dateModified"])
    assert isinstance(full, dict)
    assert list(full) == ["id", "type", "power", "status", "dateModified"]
    assert full["dateModified"] == {"type": "DateTime", "value": "2024-01-01T00:01:00.000Z", "metadata": {}}


def test_attrs_filter_and_except() -> None:
    assert render_entity(entity(), mode="keyValues", attrs=["status", "missing"]) == {
        "id": "E1",
        "type": "Meter",
        "status": "ok",
    }
    assert render_entity(entity(), mode="keyValues", except_attrs=["power"]) == {
        "id": "E1",
        "type": "Meter",
        "status": "ok",
    }


def test_metadata_filter_and_builtins() -> None:
    attr = entity()["attrs"]["power"]
    assert render_attr(attr, metadata=["dateCreated", "dateModified"])["metadata"] == {
        "dateCreated": {"type": "DateTime", "value": "2024-01-01T00:00:00.000Z"},
        "dateModified": {"type": "DateTime", "value": "2024-01-01T00:01:00.000Z"},
    }
    assert render_attr(attr, metadata=["*", "dateCreated"])["metadata"] == {
        "unitCode": {"type": "Text", "value": "KWT"},
        "dateCreated": {"type": "DateTime", "value": "2024-01-01T00:00:00.000Z"},
    }
    assert render_attr(attr, metadata=["nothing"])["metadata"] == {}


def test_extra_metadata_for_notifications() -> None:
    out = render_entity(
        entity(),
        attrs=["power"],
        metadata=["previousValue"],
        extra_metadata={
            "power": {
                "previousValue": {"type": "Number", "value": 10},
                "actionType": {"type": "Text", "value": "update"},
            }
        },
    )
    assert isinstance(out, dict)
    assert out["power"]["metadata"] == {
        "previousValue": {"type": "Number", "value": 10},
        "actionType": {"type": "Text", "value": "update"},
    }
