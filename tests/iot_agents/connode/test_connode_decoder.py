"""The Connode family on the documented payloads: schema, decoding, default mappings, profile override."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flexmeter.iot_agents.connode.family import CONNODE_ROUTES, ConnodeFamily
from flexmeter.iot_agents.core.errors import AllItemsRejected, DecodeError
from flexmeter.iot_agents.core.family import CommandReply, Message, Reading, Rejected
from flexmeter.iot_agents.core.mapping import DeviceView, EntityUpdate, Mapper

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "connode-payload.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
EXAMPLE = SCHEMA["examples"][0]
FAMILY = ConnodeFamily()
UP = CONNODE_ROUTES[0]
RECEIVED = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


def decode(payload: Any, config: dict[str, Any] | None = None) -> list[Any]:
    return FAMILY.decode(Message(UP, json.dumps(payload).encode(), {"apikey": "k", "gateway": "gw"}, None,
                                 config or {}))


def mapped(reading: Reading, device: dict[str, Any] | None = None) -> dict[str, EntityUpdate]:
    view = DeviceView({"device_id": reading.device_id, "service": "malmo", "service_path": "/",
                       **(device or {})}, None)
    return {u.entity_type: u for u in Mapper().map(reading, view, FAMILY, RECEIVED)}


def test_the_schema_is_valid_and_its_examples_conform() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for example in SCHEMA["examples"]:
        jsonschema.Draft202012Validator(SCHEMA).validate(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate({"messages": [{"type": "reading", "values": {}}]})


def test_e350_obis_registers_map_to_ac_measurement_with_units() -> None:
    e350 = decode(EXAMPLE)[0]
    assert isinstance(e350, Reading) and e350.device_id == "E350-00012345" and e350.model == "E350"
    update = mapped(e350)["ACMeasurement"]
    attrs = update.attrs
    assert update.entity_id == "ACMeasurement:E350-00012345"
    assert attrs["totalActiveEnergyImport"]["value"] == 12345.678
    assert attrs["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
    assert attrs["totalActiveEnergyExport"]["value"] == 12.5
    assert attrs["activePower"]["value"] == {"L1": 230, "L2": 410, "L3": 120}
    assert attrs["activePower"]["metadata"]["unitCode"]["value"] == "WTT"
    assert attrs["phaseVoltage"]["value"] == {"L1": 231.2, "L2": 229.8, "L3": 230.4}
    assert attrs["phaseVoltage"]["metadata"]["unitCode"]["value"] == "VLT"
    assert attrs["frequency"]["metadata"]["unitCode"]["value"] == "HTZ"
    assert attrs["status"]["value"] == "ok" and attrs["phaseType"]["value"] == "threePhase"
    assert attrs["TimeInstant"]["value"] == "2026-11-27T10:00:00.000Z"
    assert "messageType" not in attrs


def test_last_gasp_raises_an_alert_and_sets_the_meter_status() -> None:
    gasp = decode(EXAMPLE)[1]
    updates = mapped(gasp)
    meter, alert = updates["ACMeasurement"], updates["Alert"]
    assert meter.attrs["status"]["value"] == "powerOutage"
    assert meter.attrs["lastGaspReason"]["value"] == "supply lost"
    assert alert.entity_id == "Alert:E350-00012346:lastGasp"
    assert alert.attrs["category"]["value"] == "energy"
    assert alert.attrs["subCategory"]["value"] == "powerOutage"
    assert alert.attrs["severity"]["value"] == "high"
    assert alert.attrs["alertSource"]["value"] == "ACMeasurement:E350-00012346"
    assert alert.attrs["dateIssued"] == {"type": "DateTime", "value": "2026-11-27T09:59:58.000Z",
                                         "metadata": alert.attrs["dateIssued"]["metadata"]}
    event = mapped(decode(EXAMPLE)[2])
    assert set(event) == {"ACMeasurement"}  # an event is no alert
    assert event["ACMeasurement"].attrs["lastEventCode"]["value"] == 40
    assert "status" not in event["ACMeasurement"].attrs


def test_echelon_substation_maps_to_three_phase_with_sums_and_differences() -> None:
    attrs = mapped(decode(EXAMPLE)[3])["ThreePhaseAcMeasurement"].attrs
    assert attrs["totalActivePower"]["value"] == 117.0
    assert attrs["totalActivePowerSum"]["value"] == 124.0
    assert attrs["totalActivePower"]["metadata"]["unitCode"]["value"] == "KWT"
    assert attrs["totalActiveEnergyNet"]["value"] == pytest.approx(901130.8)
    assert attrs["totalReactivePower"]["value"] == pytest.approx(18.9)
    assert attrs["totalApparentPower"]["value"] == 125.0
    assert attrs["current"]["value"] == {"L1": 170.2, "L2": 168.9, "L3": 175.0}
    assert attrs["powerFactor"]["value"] == {"L1": 0.97, "L2": 0.96, "L3": 0.98}
    assert attrs["sinPhaseAngle"]["value"] == {"L1": 0.24, "L2": 0.28, "L3": 0.2}
    assert attrs["powerOutageCount"]["value"] == {"L1": 0, "L2": 1, "L3": 0}
    assert attrs["pulseCount"]["value"] == {"P1": 1234, "P2": 0}
    assert attrs["frequency"]["value"] == 49.98


def test_district_heat_maps_to_smart_metering_observation_heat() -> None:
    update = mapped(decode(EXAMPLE)[4])["SmartMeteringObservation"]
    attrs = update.attrs
    assert attrs["meterType"]["value"] == "Heat"
    assert attrs["forwardTemperature"]["value"] == 82.4
    assert attrs["forwardTemperature"]["metadata"]["unitCode"]["value"] == "CEL"
    assert attrs["flowRate"]["metadata"]["unitCode"]["value"] == "MQH"
    assert attrs["volume"]["metadata"]["unitCode"]["value"] == "LTR"
    assert attrs["totalConsumption"]["value"] == 312.456
    assert attrs["totalConsumption"]["metadata"]["unitCode"]["value"] == "MWH"
    assert attrs["TimeInstant"]["value"] == "2026-11-27T10:00:00.000Z"


def test_command_replies_and_errors_name_the_field() -> None:
    reply = decode(EXAMPLE)[5]
    assert reply == CommandReply("E350-00012345", "breaker", "OK", "disconnected")
    with pytest.raises(DecodeError, match=r"messages\[0\].device"):
        decode({"messages": [{"values": {"1.8.0": 1}}]})
    # a bad message of a batch with good ones is rejected alone (dead-lettered with its JSON), not the batch
    good, rejected = decode({"messages": [{"device": "a", "values": {"1.8.0": 1}}, {"device": "b"}]})
    assert isinstance(good, Reading) and good.device_id == "a"
    assert isinstance(rejected, Rejected) and rejected.context == {"message": 1}
    assert rejected.reason == "messages[1]: a reading without values" and rejected.raw == '{"device":"b"}'
    with pytest.raises(AllItemsRejected, match=r"messages\[0\]: a reading without values \(and 1 more"):
        decode({"messages": [{"device": "a"}, {"device": "b"}]})
    with pytest.raises(DecodeError, match="must be an array"):
        decode({"messages": {"device": "a"}})


def test_provisioning_overrides_the_mapping_and_the_payload_shape() -> None:
    # A gateway that nests differently: {"data": [{"meter": ..., "ts": ..., "obis": {...}}]}
    profile = {"connode_profile": {"messages": "data", "device": "meter", "time": "ts", "values": ["obis"],
                                   "model": "kind_of_meter"}}
    payload = {"data": [{"meter": "E350-9", "kind_of_meter": "e350", "ts": 1795780800, "obis": {"1.8.0": 7}}]}
    (reading,) = decode(payload, profile)
    override = {"attributes": [{"object_id": "1.8.0", "name": "energyWh", "type": "Number",
                                "metadata": {"unitCode": {"type": "Text", "value": "WHR"}}}]}
    attrs = mapped(reading, override)["ACMeasurement"].attrs
    assert attrs["energyWh"]["value"] == 7 and attrs["energyWh"]["metadata"]["unitCode"]["value"] == "WHR"
    assert "totalActiveEnergyImport" not in attrs
    assert attrs["TimeInstant"]["value"] == "2026-11-27T12:00:00.000Z"


def test_breaker_command_encoding() -> None:
    out = FAMILY.encode_command("k", "E350-1", "breaker", "Disconnect")
    assert out.topic == "connode/k/E350-1/cmd"
    assert json.loads(out.payload) == {"device": "E350-1", "command": "breaker", "action": "disconnect"}
    with pytest.raises(ValueError, match="connect, disconnect, status"):
        FAMILY.encode_command("k", "E350-1", "breaker", "explode")
