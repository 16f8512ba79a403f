"""The M-Bus family's decoder side, without processes: uplink formats, identity, keys, units, duplicates,
silence."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Message, Reading, Rejected, load_family
from flexmeter.iot_agents.mbus.encode import build_rsp_ud, encode_value
from flexmeter.iot_agents.mbus.family import MBUS_ROUTES, MbusFamily
from flexmeter.iot_agents.mbus.mappings import model_chain, object_id, table_for
from flexmeter.iot_agents.mbus.silence import parse_interval
from flexmeter.iot_agents.mbus.uplink import UplinkFrame, build_json_uplink, parse_json_uplink, split_wired
from tests.iot_agents.mbus.agent_support import AES_KEY, HEAT_ID, WATER_ID, heat_frame, water_telegram

JSON_ROUTE, RAW_ROUTE, _, HTTP_ROUTE = MBUS_ROUTES


def _secrets(device_id: str) -> Mapping[str, str]:
    return {"aes_key": AES_KEY.hex()} if device_id == WATER_ID else {}


def _message(payload: bytes, route=JSON_ROUTE, **params: str) -> Message:  # type: ignore[no-untyped-def]
    return Message(route, payload, {"apikey": "k", "gateway": "c1", **params}, secrets=_secrets)


def _readings(family: MbusFamily, message: Message) -> list[Reading]:
    out = family.decode(message)
    assert all(isinstance(r, Reading) for r in out)
    return out  # type: ignore[return-value]


def test_registered_in_the_core() -> None:
    family = load_family("mbus")
    assert isinstance(family, MbusFamily) and family.uses_secrets
    assert family.entity_type("heat:KAM:27") == "SmartMeteringObservation"
    assert family.entity_type("water:ELS:1") == "WaterConsumptionObserved"
    assert family.entity_type(None) == "Device"


def test_heat_reading_values_units_and_meter_time() -> None:
    received = datetime(2026, 11, 27, 9, 16, tzinfo=UTC)
    uplink = build_json_uplink([UplinkFrame("mbus", heat_frame(), rssi=-60)], "c1", received)
    (reading,) = _readings(MbusFamily(), _message(uplink))
    assert reading.device_id == HEAT_ID and reading.model == "heat:KAM:27"
    assert reading.observed_at == datetime(2026, 11, 27, 10, 15)  # meter-local, naive: the device timezone applies
    v = reading.values
    assert (v["energy"], v["volume"], v["power"], v["volume_flow"]) == (12345, 123.45, 5, 1.234)
    assert (v["flow_temperature"], v["return_temperature"], v["temperature_difference"]) == (70.1, 40.5, 29.6)
    assert v["energy.s1"] == 10000 and v["rssi"] == -60 and v["concentrator"] == "c1"
    assert reading.units["energy"] == "KWH" and reading.units["power"] == "KWT"
    assert "datetime" not in v  # the meter time became observed_at


def test_joule_and_unknown_units_are_converted_or_kept_apart() -> None:
    records = (encode_value("energy", Decimal(3_600_000_000), "J", 6)        # 3.6 GJ = 1000 kWh
               + encode_value("volume", Decimal("1.5"), "m³", -1, storage=2)
               + encode_value("energy", Decimal(2000), "Wh", 3, tariff=1))
    frame = build_rsp_ud(address=1, meter_id="00000001", manufacturer="SEN", version=1, medium=0x0C,
                         access_number=1, status=0x04, records=records)
    (reading,) = _readings(MbusFamily(), _message(frame, RAW_ROUTE, kind="mbus"))
    assert reading.values["energy"] == 1000 and reading.values["energy.t1"] == 2
    assert reading.values["volume.s2"] == 1.5 and reading.values["alarm"] == 1  # power low
    assert reading.observed_at is None


def test_encrypted_wmbus_needs_the_provisioned_key() -> None:
    family = MbusFamily()
    (reading,) = _readings(family, _message(build_json_uplink([UplinkFrame("wmbus", water_telegram())], "c1")))
    assert reading.device_id == WATER_ID and reading.values["volume"] == 12345 and reading.units["volume"] == "LTR"
    no_key = Message(JSON_ROUTE, build_json_uplink([UplinkFrame("wmbus", water_telegram(access=4))], "c1"),
                     {"apikey": "k"}, secrets=lambda d: {})
    with pytest.raises(DecodeError, match="no AES key"):
        family.decode(no_key)
    wrong = Message(no_key.route, no_key.payload, no_key.params, secrets=lambda d: {"aes_key": "00" * 16})
    with pytest.raises(DecodeError, match="WrongKeyError"):
        family.decode(wrong)


def test_duplicates_dropped_by_meter_access_number_and_time() -> None:
    family = MbusFamily()
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    one = build_json_uplink([UplinkFrame("mbus", heat_frame())], "c1", at)
    two = build_json_uplink([UplinkFrame("mbus", heat_frame())], "c2", at.replace(second=3))
    assert len(family.decode(_message(one))) == 1
    assert family.decode(_message(two)) == [] and family.duplicates_dropped == 1
    # same access number but another meter time: a new telegram
    later = build_json_uplink([UplinkFrame("mbus", heat_frame(when=datetime(2026, 11, 27, 11, 0)))], "c1", at)
    assert len(family.decode(_message(later))) == 1
    # the same key again a day later (the access number has wrapped): not a duplicate
    wrapped = build_json_uplink([UplinkFrame("mbus", heat_frame())], "c1", at.replace(day=28))
    assert len(family.decode(_message(wrapped))) == 1


def test_a_bad_frame_is_rejected_alone_and_an_all_bad_uplink_marks_nothing_seen() -> None:
    family = MbusFamily()
    bad = bytearray(heat_frame(access=9))
    bad[-2] ^= 0xFF
    # one good and one bad frame: the reading, and a Rejected item with the bad frame's own bytes
    mixed = json.dumps({"frames": [heat_frame(access=8).hex(), bytes(bad).hex()]}).encode()
    decoded = family.decode(_message(mixed))
    (reading,) = [d for d in decoded if not isinstance(d, Rejected)]
    (rejected,) = [d for d in decoded if isinstance(d, Rejected)]
    assert isinstance(reading, Reading) and reading.device_id == HEAT_ID
    assert isinstance(rejected, Rejected) and rejected.raw == bytes(bad) and rejected.error == "WRONG_SYNTAX"
    assert re.search(r"frame 2 of 2 .*ChecksumError.*link\.checksum", rejected.reason), rejected.reason
    assert rejected.context["frame"] == 1 and rejected.context["kind"] == "mbus"
    # every frame bad: the whole message is rejected, and the good-looking frames are not marked as seen
    with pytest.raises(DecodeError, match=r"frame 1 of 2 .*ChecksumError.*\(and frame\(s\) 2 of 2 are bad too\)"):
        family.decode(_message(json.dumps({"frames": [bytes(bad).hex(), bytes(bad).hex()]}).encode()))
    other = bytearray(heat_frame(access=10))
    other[-2] ^= 0xFF
    with pytest.raises(DecodeError):
        family.decode(_message(json.dumps({"frames": [bytes(other).hex()]}).encode()))
    assert len(family.decode(_message(json.dumps({"frames": [heat_frame(access=10).hex()]}).encode()))) == 1


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "not JSON"),
    (b'{"frames": []}', "non-empty"),
    (b'{"frames": [{"hex": "zz"}]}', "not valid hex"),
    (b'{"frames": [{"hex": "E5", "kind": "lora"}]}', "kind must be"),
    (b'{"received": "2026-11-27T10:00:00", "frames": ["E5"]}', "no UTC offset"),
    (b'{"frames": ["E5"]}', "not a data frame"),
])
def test_malformed_uplinks(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        MbusFamily().decode(_message(payload))


def test_raw_wired_uplink_with_concatenated_frames_and_hex_text() -> None:
    frames = heat_frame(access=1) + heat_frame(access=2, meter_id="12345679")
    assert split_wired(frames) == [heat_frame(access=1), heat_frame(access=2, meter_id="12345679")]
    readings = _readings(MbusFamily(), Message(HTTP_ROUTE, frames, {"apikey": "k"}, "application/octet-stream"))
    assert [r.device_id for r in readings] == [HEAT_ID, "123456792C2D1B04"]
    text = heat_frame(access=3).hex().encode()
    assert len(MbusFamily().decode(Message(HTTP_ROUTE, text, {"apikey": "k"}, "text/plain"))) == 1


def test_uplink_round_trip_keeps_per_frame_times() -> None:
    t1 = datetime(2026, 1, 1, tzinfo=UTC)
    frames = parse_json_uplink(build_json_uplink([UplinkFrame("wmbus", b"\x01\x02", t1, -80.5)], "cx"))
    assert frames == [UplinkFrame("wmbus", b"\x01\x02", t1, -80.5, "cx")]


def test_mapping_data() -> None:
    assert object_id("power", "maximum", 0, 0, 0) == "power.max"
    assert object_id("energy", "instantaneous", 3, 1, 1) == "energy.t1.u1.s3"
    assert model_chain("heat:KAM:27") == ["heat:KAM:27", "heat:KAM", "heat", "generic"]
    names = {e["object_id"]: e["name"] for e in table_for("heat:XYZ:1") if "object_id" in e}
    assert names["energy"] == "totalConsumption" and names["power.max"] == "peakPower"
    assert names["flow_temperature"] == "forwardTemperature" and names["energy.s1"] == "totalConsumptionStorage1"
    water = {e["object_id"]: e for e in table_for("water") if "object_id" in e}
    assert water["volume"]["name"] == "waterConsumption"
    assert water["volume"]["metadata"]["unitCode"]["value"] == "LTR"


def test_silence_watch() -> None:
    family = MbusFamily()
    family.silence.started = 1000.0
    heat: dict[str, Any] = {"device_id": HEAT_ID, "protocol": "mbus", "apikey": "k",
                            "internal_attributes": {"interval": "PT5M"}}
    water: dict[str, Any] = {"device_id": WATER_ID, "protocol": "mbus"}
    group: dict[str, Any] = {"apikey": "k", "internal_attributes": [{"name": "interval", "value": 60},
                                                     {"name": "silence_factor", "value": 2}]}
    other: dict[str, Any] = {"device_id": "x", "protocol": "json", "internal_attributes": {"interval": 1}}
    devices: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(heat, None), (water, group), (other, None)]
    assert family.check_silence(devices, now=1100) == []
    (water_silent,) = family.check_silence(devices, now=1121)       # 2 x 60 s
    assert water_silent.device_id == WATER_ID and water_silent.apikey == "k"
    (anomaly,) = family.check_silence(devices, now=1901)             # 3 x 300 s
    assert family.check_silence(devices, now=5000) == []            # each reported once
    assert anomaly.device_id == HEAT_ID and anomaly.observed_at == 1901
    assert anomaly.values["silence.anomalyType"] == "silence" and anomaly.values["silence.status"] == "active"
    assert family.silence.heard(HEAT_ID, 6000) is True and family.silence.heard(HEAT_ID, 6001) is False
    assert parse_interval("PT1H30M") == 5400 and parse_interval("300") == 300 and parse_interval("x") is None


def test_every_corpus_frame_gives_json_values_or_a_decode_error(corpus_dir: Path) -> None:
    """Other people's frames through the family: a reading whose values the outbox can serialise, or the
    core's DecodeError; never another exception (which the core would file as INTERNAL_ERROR)."""
    frames = [UplinkFrame("mbus", bytes.fromhex(p.read_text().replace(" ", "").strip()))
              for p in sorted((corpus_dir / "libmbus").glob("*-frames/*.hex"))]
    vectors = json.loads((corpus_dir / "m-bus-parser" / "wmbus_test_vectors.json").read_text())
    frames += [UplinkFrame("wmbus", bytes.fromhex(v["input"])) for v in vectors]
    assert len(frames) > 90
    readings = rejected = 0
    reasons: list[str] = []
    ids: list[str] = []
    for frame in frames:
        family = MbusFamily()
        try:
            (reading,) = _readings(family, _message(build_json_uplink([frame], "c1")))
        except DecodeError as exc:
            rejected += 1
            reasons.append(exc.message)
            continue
        ids.append(reading.device_id)
        json.dumps(dict(reading.values), allow_nan=False)
        assert reading.device_id and len(reading.device_id) == 16
        readings += 1
    assert readings >= 76 and rejected >= 1
    assert "12345678FFFFFF07" in ids  # manual_frame2: fixed data structure, no manufacturer/version
    assert any("reports application error 3 (Too many records)" in r for r in reasons)
    assert any("CI A2 (manufacturer-specific" in r for r in reasons)
    assert any("ELL AES-CTR) and no AES key" in r for r in reasons)
