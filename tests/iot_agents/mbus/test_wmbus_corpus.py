"""Wireless M-Bus: header fields of the 23 m-bus-parser telegrams, the OMS mode 5 vectors, WEPTECH."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.errors import TruncatedRecordError, WrongKeyError
from flexmeter.iot_agents.mbus.link import strip_format_a
from tests.conftest import CORPUS

VECTORS: list[dict[str, Any]] = json.loads((CORPUS / "m-bus-parser" / "wmbus_test_vectors.json").read_text())
OMS: list[dict[str, Any]] = json.loads((CORPUS / "m-bus-parser" / "oms_mode5_vectors.json").read_text())["vectors"]
OMS_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F11")

# m-bus-parser's medium names → the EN 13757-3 device type codes they stand for (and Techem's own codes).
MEDIUM_CODES = {"Water": {0x07}, "Other": {0x00}, "RoomSensor": {0x1B}, "Heat": {0x04}, "Electricity": {0x02},
                "HeatCostAllocator": {0x08, 0x80}, "WarmWater": {0x06, 0x62}, "HeatMeterFlow": {0xC3},
                "HeatCoolingLoad": {0x0D}, "ColdWater": {0x16}, "Gas": {0x03}}

# Header quirks of the reference, by telegram index, with the reason; the listed fields are not compared.
HEADER_QUIRKS: dict[int, tuple[set[str], str]] = {
    **{i: ({"access_number", "status"},
           "CI 0xA0/0xA2 is manufacturer-specific (Techem): EN 13757-3 defines no access number or status "
           "there; m-bus-parser takes them from bytes 2/3 after CI 0xA0 but 1/2 after CI 0xA2")
       for i in (6, 7, 8, 9)},
    **{i: ({"status"}, "ELL telegram (CI 0x8D) with encrypted payload: the TPL status is inside the "
                       "encryption; m-bus-parser reports the ELL communication-control byte (0x20) as status")
       for i in (18, 19)},
}
TRUNCATED = {16: "the telegram (from wmbusmeters' tests) ends 2 bytes into its last record (DIF 04 VIF 6D); the "
                 "header is checked on the partial telegram the TruncatedRecordError carries"}


@pytest.mark.parametrize("index", range(len(VECTORS)))
def test_wmbus_header_fields(index: int) -> None:
    vector = VECTORS[index]
    exp = vector["expected"]
    if index in TRUNCATED:
        with pytest.raises(TruncatedRecordError) as info:
            decode_wmbus(vector["input"])
        tel = info.value.telegram
        assert len(tel.records) == 7  # the records before the cut are kept for diagnostics
    else:
        tel = decode_wmbus(vector["input"])
    skip, _reason = HEADER_QUIRKS.get(index, (set(), ""))
    assert tel.manufacturer == exp["manufacturer"]
    assert int(tel.id) == exp["identification_number"]
    assert tel.version == exp["version"]
    assert tel.medium in MEDIUM_CODES[exp["medium"]]
    if "access_number" not in skip:
        assert tel.access_number == exp["access_number"]
    if "status" not in skip:
        assert tel.status == exp["status"]
    if index in (18, 19):
        assert tel.ell is not None and tel.ell["cc"] == exp["status"] and tel.encrypted


def test_wmbus_plain_records() -> None:
    # SEN water meter: 0413 181E0000 → 7.704 m³, 023B 0000 → 0 m³/h
    tel = decode_wmbus(VECTORS[0]["input"])
    assert [(r.quantity, r.value, r.unit) for r in tel.records] == [
        ("volume", Decimal("7.704"), "m³"), ("volume_flow", 0, "m³/h")]
    # LAS: DIF 8E 40 is subunit 1, storage 0 (the reference's hint list says storage 1: wrong, see README)
    las = decode_wmbus(VECTORS[2]["input"])
    sub = [r for r in las.records if r.dif[:1] == b"\x8e"]
    assert sub and all((r.subunit, r.storage) == (1, 0) for r in sub)


def test_encrypted_without_key_gives_header_only() -> None:
    tel = decode_wmbus(VECTORS[-1]["input"])
    assert tel.encrypted and tel.security_mode == 5 and tel.records == [] and tel.payload


def _records(tel: Any) -> list[tuple[str, Any, str]]:
    return [(r.quantity, r.value, r.unit) for r in tel.records]


OMS1_RECORDS = [("volume", Decimal("28504.27"), "m³"), ("datetime", dt.datetime(2008, 5, 31, 23, 50), ""),
                ("error_flags", 0, "")]


def test_oms_mode5_with_crcs() -> None:
    tel = decode_wmbus(OMS[0]["input_hex"], key=bytes.fromhex(OMS[0]["key"]))
    assert tel.frame_format == "A" and tel.security_mode == 5 and not tel.encrypted
    assert _records(tel) == OMS1_RECORDS
    # the same records as the wired frame carrying this payload (libmbus oms_frame1)
    wired = decode_mbus((CORPUS / "libmbus" / "test-frames" / "oms_frame1.hex").read_text())
    assert _records(wired) == OMS1_RECORDS
    assert (tel.manufacturer, tel.id, tel.version, tel.medium, tel.access_number) == ("ELS", "12345678", 51, 3, 42)


def test_oms_mode5_without_crcs() -> None:
    plain = strip_format_a(bytes.fromhex(OMS[0]["input_hex"]))
    assert len(plain) == 47
    tel = decode_wmbus(plain, key=OMS_KEY)
    assert tel.frame_format == "none" and _records(tel) == OMS1_RECORDS
    # also the no-CRC form in the m-bus-parser header vectors
    assert _records(decode_wmbus(VECTORS[20]["input"], key=OMS_KEY)) == OMS1_RECORDS


@pytest.mark.parametrize("form", ["crc", "plain"])
def test_oms_mode5_wrong_key(form: str) -> None:
    data = bytes.fromhex(OMS[0]["input_hex"])
    if form == "plain":
        data = strip_format_a(data)
    wrong = bytearray(OMS_KEY)
    wrong[0] ^= 1
    with pytest.raises(WrongKeyError) as info:
        decode_wmbus(data, key=bytes(wrong))
    assert info.value.rule == "security.key"
    assert info.value.telegram.records == []  # nothing decrypted wrongly is returned


def test_oms_mode5_utf8_vector() -> None:
    """The second vector keeps the CRC of block 1 only (49 = 47 + 2 bytes). It decrypts to one LVAR text
    record whose UTF-8 text "m³" (sent last byte first) survives, as the upstream test checks."""
    tel = decode_wmbus(OMS[1]["input_hex"], key=OMS_KEY)
    assert tel.frame_format == "A-block1"
    assert _records(tel) == [("volume", "m³", "m³")]
    with pytest.raises(WrongKeyError):
        decode_wmbus(OMS[1]["input_hex"], key=bytes(16))


def test_weptech_room_sensor() -> None:
    spec = json.loads((CORPUS / "pymeterbus" / "weptech_room_sensor.json").read_text())
    tel = decode_mbus(spec["frame_hex"])
    expected = spec["expected"]["records"]
    assert len(tel.records) == spec["expected"]["record_count"] == 6
    for rec, exp in zip(tel.records, expected, strict=True):
        assert abs(float(rec.value) - exp["value"]) <= exp.get("tolerance", 0)
        assert not isinstance(rec.value, float)
    units = [r.unit for r in tel.records]
    assert units == ["", "s", "dBm", "°C", "%", ""]
    assert tel.records[4].value == Decimal("53.1") and tel.records[4].quantity == "relative_humidity"
    assert tel.records[2].quantity == "reception_level" and tel.records[2].value == -70
    # 02 FD 97 1D: error flags with VIFE 0x1D (a record error code): flagged, not fatal
    assert tel.records[5].quantity == "error_flags" and "record_error" in tel.records[5].flags
