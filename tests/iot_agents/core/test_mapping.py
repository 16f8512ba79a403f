"""Mapping, expressions, the json decoder, the registry and the outbox: the pure and local parts of the core."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flexmeter.iot_agents.core.errors import (
    BadTimestamp,
    DecodeError,
    DeviceNotFound,
    DuplicateDeviceId,
    DuplicateGroup,
    InvalidExpression,
)
from flexmeter.iot_agents.core.expressions import Expressions
from flexmeter.iot_agents.core.family import FAMILIES, Message, Reading, Route, UnknownFamilyError, load_family
from flexmeter.iot_agents.core.json_family import JSON_ROUTES, JsonFamily
from flexmeter.iot_agents.core.mapping import DeviceView, Mapper
from flexmeter.iot_agents.core.outbox import NewDeadLetter, NewRow, Outbox
from flexmeter.iot_agents.core.registry import Registry

RECEIVED = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
FAMILY = JsonFamily()


def view(device: dict, group: dict | None = None) -> DeviceView:
    base = {"device_id": "d1", "service": "acme", "service_path": "/x"}
    return DeviceView({**base, **device}, group)


def test_jexl_evaluates_the_fiware_examples_without_python_eval() -> None:
    ex = Expressions()
    assert ex.evaluate("p * 1000", {"p": 1.5}) == 1500
    assert ex.evaluate("p * 1000", {"p": 2}) == 2000
    assert ex.evaluate("(6 + value) * 3", {"value": 6}) == 36
    assert ex.evaluate('name + "value is " + value', {"name": "D", "value": 6}) == "Dvalue is 6"
    assert ex.evaluate("spaces | trim", {"spaces": "  x "}) == "x"
    assert ex.evaluate("missing * 2", {}) is None
    assert ex.evaluate("{coordinates: [lon, lat], type: 'Point'}", {"lon": 5, "lat": 37}) == {
        "coordinates": [5, 37], "type": "Point"}
    with pytest.raises(InvalidExpression):
        ex.evaluate("__import__('os').system('true')", {})


def test_default_entity_id_object_id_mapping_units_static_and_timeinstant() -> None:
    group = {"apikey": "k", "entity_type": "Room", "service": "acme", "subservice": "/x",
             "attributes": [{"object_id": "p", "name": "power", "type": "Number", "expression": "p * 1000",
                             "metadata": {"unitCode": {"type": "Text", "value": "WTT"}}}],
             "static_attributes": [{"name": "site", "type": "Text", "value": "Malmö"}]}
    updates = Mapper().map(Reading("d1", {"p": 1.5, "extra": 7}, "2026-11-27T10:00:00Z"), view({}, group), FAMILY,
                           RECEIVED)
    assert len(updates) == 1
    entity = updates[0].entity()
    assert entity["id"] == "Room:d1" and entity["type"] == "Room"
    assert entity["power"]["value"] == 1500 and entity["power"]["type"] == "Number"
    assert entity["power"]["metadata"]["unitCode"] == {"type": "Text", "value": "WTT"}
    assert entity["power"]["metadata"]["TimeInstant"]["value"] == "2026-11-27T10:00:00.000Z"
    assert entity["extra"] == {"type": "Text", "value": 7,
                               "metadata": {"TimeInstant": {"type": "DateTime", "value": "2026-11-27T10:00:00.000Z"}}}
    assert entity["site"] == {"type": "Text", "value": "Malmö"}
    assert entity["TimeInstant"] == {"type": "DateTime", "value": "2026-11-27T10:00:00.000Z"}


def test_device_attributes_override_the_group_and_explicit_attrs_drops_unmapped() -> None:
    group = {"entity_type": "Room", "explicitAttrs": True,
             "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}]}
    device = {"entity_name": "urn:room:1", "attributes": [{"object_id": "t", "name": "temp", "type": "Float"}]}
    updates = Mapper().map(Reading("d1", {"t": "21.5", "junk": 1}), view(device, group), FAMILY, RECEIVED)
    attrs = updates[0].attrs
    assert updates[0].entity_id == "urn:room:1"
    assert attrs["temp"]["value"] == 21.5 and attrs["temp"]["type"] == "Float"
    assert "temperature" not in attrs and "junk" not in attrs
    assert attrs["TimeInstant"]["value"] == "2026-11-27T12:00:00.000Z"  # no time in the reading: reception


def test_meter_local_time_uses_the_device_timezone() -> None:
    updates = Mapper().map(Reading("d1", {"a": 1}, "2026-07-01T12:00:00"),
                           view({"timezone": "Europe/Stockholm", "entity_type": "T"}), FAMILY, RECEIVED)
    assert updates[0].attrs["TimeInstant"]["value"] == "2026-07-01T10:00:00.000Z"
    with pytest.raises(BadTimestamp):
        Mapper().map(Reading("d1", {"a": 1}, "yesterday"), view({}), FAMILY, RECEIVED)


def test_components_computed_attributes_and_other_entities() -> None:
    group = {"entity_type": "M", "attributes": [
        {"object_id": "21.7.0", "name": "activePower", "component": "L1", "type": "StructuredValue"},
        {"object_id": "41.7.0", "name": "activePower", "component": "L2"},
        {"object_id": "1.7.0", "name": "imp", "type": "Number"},
        {"object_id": "2.7.0", "name": "exp", "type": "Number"},
        {"name": "net", "type": "Number", "expression": "imp - exp"},
        {"name": "never", "type": "Number", "expression": "nothere * 2"},
        {"object_id": "gasp", "name": "category", "type": "Text", "entity_name": "'Alert:' + id",
         "entity_type": "Alert"},
    ]}
    updates = Mapper().map(Reading("d1", {"21.7.0": 100, "41.7.0": 200, "1.7.0": 5, "2.7.0": 2, "gasp": "energy"}),
                           view({}, group), FAMILY, RECEIVED)
    main, alert = updates
    assert main.attrs["activePower"]["value"] == {"L1": 100, "L2": 200}
    assert main.attrs["net"]["value"] == 3 and "never" not in main.attrs
    assert (alert.entity_id, alert.entity_type) == ("Alert:d1", "Alert")
    assert alert.attrs["category"]["value"] == "energy"


def test_json_decoder_arrays_single_attribute_and_errors() -> None:
    attrs = next(r for r in JSON_ROUTES if r.pattern == "/json/{apikey}/{device_id}/attrs")
    single = next(r for r in JSON_ROUTES if r.pattern.endswith("/attrs/{attr}"))
    readings = FAMILY.decode(Message(attrs, b'[{"t": 1, "TimeInstant": "2026-01-01T00:00:01Z"}, {"t": 2}]',
                                     {"apikey": "k", "device_id": "d"}))
    assert [r.values for r in readings] == [{"t": 1}, {"t": 2}]  # type: ignore[union-attr]
    assert readings[0].observed_at == "2026-01-01T00:00:01Z"  # type: ignore[union-attr]
    one = FAMILY.decode(Message(single, b"42", {"apikey": "k", "device_id": "d", "attr": "t"}))
    assert one[0].values == {"t": 42}  # type: ignore[union-attr]
    with pytest.raises(DecodeError, match=r"not JSON.*column 7 \(char 6\)"):
        FAMILY.decode(Message(attrs, b'{"t": ', {"apikey": "k", "device_id": "d"}))
    with pytest.raises(DecodeError, match="measure 0 is a int"):
        FAMILY.decode(Message(attrs, b"[3]", {"apikey": "k", "device_id": "d"}))


def test_route_patterns_give_filters_bindings_and_parameters() -> None:
    route = Route("mqtt", "/json/{apikey}/{device_id}/attrs")
    assert route.mqtt_filter() == "/json/+/+/attrs"
    assert route.amqp_binding() == ".json.*.*.attrs"
    assert route.match("/json/k1/dev-9/attrs") == {"apikey": "k1", "device_id": "dev-9"}
    assert route.match("/json/k1/dev-9/attrs/t") is None


def test_family_registry_is_declarative() -> None:
    assert {"json", "connode", "mbus", "dlms", "midori"} <= set(FAMILIES)
    assert load_family("json").name == "json"
    assert load_family("connode").name == "connode"
    with pytest.raises(UnknownFamilyError):
        load_family("zigbee")


def test_registry_keeps_secrets_apart_and_reports_duplicates(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.db", tmp_path / "secrets.db")
    registry.create_groups("acme", "/x", [{"apikey": "k", "entity_type": "Meter"}])
    with pytest.raises(DuplicateGroup):
        registry.create_groups("acme", "/y", [{"apikey": "k"}])
    registry.create_devices("acme", "/x", [{"device_id": "m1", "internal_attributes": [
        {"name": "aes_key", "value": "000102030405060708090A0B0C0D0E0F"}, {"name": "model", "value": "E350"}]}])
    device = registry.get_device("acme", "/x", "m1")
    assert device["entity_name"] == "Meter:m1" and device["apikey"] == "k"
    assert device["internal_attributes"] == [{"name": "model", "value": "E350"}]
    assert "0A0B0C" not in (tmp_path / "registry.db").read_bytes().decode("latin-1")
    assert registry.secrets("acme", "/x", "m1") == {"aes_key": "000102030405060708090A0B0C0D0E0F"}
    with pytest.raises(DuplicateDeviceId):
        registry.create_devices("acme", "/x", [{"device_id": "m1"}])
    registry.delete_device("acme", "/x", "m1")
    assert registry.secrets("acme", "/x", "m1") == {}
    with pytest.raises(DeviceNotFound):
        registry.get_device("acme", "/x", "m1")


def test_outbox_survives_reopening_and_dead_letters_keep_the_raw_payload(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.put([NewRow("s", "/", json.dumps({"id": f"E{i}", "type": "T"}), "json", 1.0) for i in range(5)],
               [NewDeadLetter("json", "WRONG_SYNTAX", "payload is not JSON", b"\xff{", {"route": "x"})])
    outbox.delete([r.id for r in outbox.peek(2)])
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.db")
    assert [json.loads(r.entity)["id"] for r in reopened.peek(10)] == ["E2", "E3", "E4"]
    (dead,) = reopened.dead_letters()
    assert dead.raw == b"\xff{" and dead.reason == "payload is not JSON"
    assert dead.as_json()["raw"] == {"hex": "ff7b"}


def test_inbox_messages_left_by_a_dead_agent_are_decoded_at_the_next_start(tmp_path: Path) -> None:
    """Acked (in the inbox) but not decoded when the process died: the next pipeline finishes the job."""
    from flexmeter.iot_agents.core.metrics import AgentMetrics
    from flexmeter.iot_agents.core.outbox import InboxRow
    from flexmeter.iot_agents.core.pipeline import Pipeline

    registry = Registry(tmp_path / "registry.db", tmp_path / "secrets.db")
    registry.create_groups("acme", "/x", [{"apikey": "k", "entity_type": "Meter"}])
    outbox = Outbox(tmp_path / "outbox.db")
    route = next(r for r in JSON_ROUTES if r.pattern == "/json/{apikey}/{device_id}/attrs")
    outbox.put_inbox([InboxRow("json", "mqtt", route.pattern, {"apikey": "k", "device_id": f"m{i}"},
                               json.dumps({"e": i}).encode(), None, 1.0) for i in range(3)]
                     + [InboxRow("json", "mqtt", route.pattern, {"apikey": "k", "device_id": "m9"}, b"{", None, 1.0)])
    pipeline = Pipeline(registry, outbox, Mapper(), AgentMetrics())
    pipeline.families = {"json": FAMILY}
    pipeline.start()
    try:
        deadline = time.monotonic() + 10
        while outbox.inbox_depth() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pipeline.stop()
    assert outbox.inbox_depth() == 0
    assert [json.loads(r.entity)["id"] for r in outbox.peek(10)] == ["Meter:m0", "Meter:m1", "Meter:m2"]
    (dead,) = outbox.dead_letters()
    assert dead.raw == b"{" and dead.error == "WRONG_SYNTAX"
