"""IEC 62056-21: amshan P1 readouts, dsmr_parser telegrams, pwitab mode C BCC vectors, round trips."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flexmeter.iot_agents.dlms.errors import ChecksumError, DecodeError
from flexmeter.iot_agents.dlms.iec62056_21 import (
    DataSet,
    build_mode_c_readout,
    build_p1_telegram,
    decode_message,
    decode_readout,
)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"
P1 = CORPUS / "amshan" / "p1_readouts"
DSMR = CORPUS / "dsmr_parser"
P1_EXPECTED: dict[str, Any] = json.loads((P1 / "expected.json").read_text())
DSMR_EXPECTED: dict[str, Any] = json.loads((DSMR / "expected.json").read_text())
MODE_C: list[dict[str, Any]] = json.loads(
    (CORPUS / "iec62056-21" / "mode_c_vectors.json").read_text())["vectors"]

# dsmr_parser objects whose telegram_specification gives no OBIS pattern (EON Hungary): our mapping.
NO_PATTERN = {
    "COSEM_LOGICAL_DEVICE_NAME": "x-x:42.0.0", "EQUIPMENT_SERIAL_NUMBER": "x-x:96.1.0",
    "ELECTRICITY_COMBINED": "x-x:15.8.0", "FREQUENCY": "x-x:14.7.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q1": "x-x:5.8.0", "ELECTRICITY_REACTIVE_TOTAL_Q2": "x-x:6.8.0",
    "ELECTRICITY_REACTIVE_TOTAL_Q3": "x-x:7.8.0", "ELECTRICITY_REACTIVE_TOTAL_Q4": "x-x:8.8.0",
    "INSTANTANEOUS_POWER_FACTOR_TOTAL": "x-x:13.7.0", "INSTANTANEOUS_POWER_FACTOR_L1": "x-x:33.7.0",
    "INSTANTANEOUS_POWER_FACTOR_L2": "x-x:53.7.0", "INSTANTANEOUS_POWER_FACTOR_L3": "x-x:73.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q1": "x-x:5.7.0", "INSTANTANEOUS_REACTIVE_POWER_Q2": "x-x:6.7.0",
    "INSTANTANEOUS_REACTIVE_POWER_Q3": "x-x:7.7.0", "INSTANTANEOUS_REACTIVE_POWER_Q4": "x-x:8.7.0",
}


@pytest.mark.parametrize("name", sorted(P1_EXPECTED))
def test_amshan_p1_readouts(name: str) -> None:
    expected = P1_EXPECTED[name]["expected"]
    readout = decode_readout((P1 / name).read_bytes())
    ident = readout.identification
    assert ident.line == expected["identification_line"]
    if "identification_line.identification" in expected:
        assert ident.identification == expected["identification_line.identification"]
    if "identification_line.manufacturer_id" in expected:
        assert ident.manufacturer == expected["identification_line.manufacturer_id"]
    assert readout.end_line == expected["end_line"]
    if "expected_checksum" in expected:
        assert readout.checksum == expected["expected_checksum"] == expected["_calculated_crc"]
        assert readout.checksum_valid is expected["is_valid"]
    for ds in expected.get("datasets", []):
        got = readout.datasets[ds["index"]]
        assert got.address == ds["address"]
        assert [{"value": v, "unit": u} for v, u in got.groups] == ds["values"]
    if name == "example_data_a_landisgyr_360.txt":
        assert len(expected["datasets"]) == 27
        assert readout.values["1-0:1.8.0.255"].value == Decimal("896.020")
        assert readout.values["0-0:1.0.0.255"].value.isoformat() == "2021-02-22T16:19:00+01:00"


def _pattern(obis_pattern: str) -> re.Pattern[str]:
    text = re.escape(obis_pattern).replace("x", r"\d+").replace(r"\[", "[").replace(r"\]", "]")
    text = text.replace(r"\-", "-")
    return re.compile(f"^{text}$")


def _find(datasets: list[DataSet], obis_pattern: str) -> DataSet:
    pattern = _pattern(obis_pattern)
    matches = [d for d in datasets if pattern.match(d.address)]
    assert matches, f"no data set matches {obis_pattern}"
    # dsmr_parser keeps the last match when a pattern matches several M-Bus channels, and skips empty
    # values such as an unused channel's ``0-2:96.1.0()`` (its value regex needs a character).
    filled = [d for d in matches if d.raw != ""] or matches
    return filled[-1]


def _same(expected: Any, ds: DataSet) -> bool:
    if isinstance(expected, dict) and "decimal" in expected:
        return isinstance(ds.value, Decimal) and ds.value == Decimal(expected["decimal"])
    if isinstance(expected, dict) and "datetime" in expected:
        return isinstance(ds.value, datetime) and ds.value == datetime.fromisoformat(expected["datetime"])
    if isinstance(expected, bool):
        return False
    if isinstance(expected, int):
        return Decimal(ds.raw) == expected
    return ds.raw == expected


@pytest.mark.parametrize("name", sorted(DSMR_EXPECTED))
def test_dsmr_parser_telegrams(name: str) -> None:
    readout = decode_readout((DSMR / name).read_bytes())
    objects = DSMR_EXPECTED[name]["objects"]
    for obj_name, obj in objects.items():
        ds = _find(readout.datasets, obj["obis_pattern"] or NO_PATTERN[obj_name])
        assert _same(obj["value"], ds), f"{obj_name}: expected {obj['value']!r}, got {ds.value!r}"
        if "unit" in obj:
            assert ds.unit == obj["unit"], obj_name


def test_every_dsmr_telegram_checks_out() -> None:
    names = sorted(p.name for p in DSMR.glob("telegram_*.txt"))
    assert len(names) == 13
    for name in names:
        readout = decode_readout((DSMR / name).read_bytes())
        assert readout.checksum_valid in (True, None), name
    assert decode_readout((DSMR / "telegram_unpadded_crc.txt").read_bytes()).checksum == 0x0B9F


def test_dsmr_flipped_byte_fails_crc() -> None:
    raw = bytearray((DSMR / "telegram_v5.txt").read_bytes())
    raw[raw.index(b"1-0:1.8.1(") + 12] ^= 0x01
    with pytest.raises(ChecksumError) as info:
        decode_readout(bytes(raw))
    assert info.value.rule == "P1 CRC16"
    assert decode_readout(bytes(raw), verify=False).checksum_valid is False


@pytest.mark.parametrize("index", range(len(MODE_C)))
def test_mode_c_vectors(index: int) -> None:
    vector = MODE_C[index]
    raw = vector["raw"].encode("latin-1")
    expected = vector["expected"]
    if expected.get("bcc_valid") is False:
        with pytest.raises(ChecksumError):
            decode_message(raw)
        assert decode_message(raw, verify=False).bcc_valid is False
        return
    message = decode_message(raw)
    if "bcc_valid" in expected:
        assert message.bcc_valid is True
    for ds, exp in zip(message.datasets, expected.get("datasets", []), strict=False):
        assert (ds.address, ds.groups[0][0], ds.groups[0][1]) == (exp["address"], exp["value"], exp["unit"])
    if "datasets" in expected:
        assert len(message.datasets) == len(expected["datasets"])
    for key in ("command", "command_type", "address", "value", "device_address", "protocol_char",
                "baud_char", "mode_char", "manufacturer"):
        if key in expected:
            assert message.fields[key] == expected[key], key
    if "switchover_baudrate_char" in expected:
        assert message.fields["baud_char"] == expected["switchover_baudrate_char"]
    if "identification" in expected:
        # Quirk of the reference: pwitab/iec62056-21 keeps the enhanced-id character of ``\W`` in the
        # identification ("/Els6\2EK280" → "2EK280"); per IEC 62056-21 ``\2`` is the enhanced
        # capability sequence and the identification is "EK280" (amshan agrees: "/ELL5\253833635_A" →
        # "53833635_A"). We expose both parts; their concatenation is the reference's value.
        assert message.fields["enhanced_id"] + message.fields["identification"] == expected["identification"]
        assert message.fields["identification"] == "EK280"


def test_mode_c_readout_round_trip() -> None:
    raw = build_mode_c_readout("ABC5\\2METER01", [("1.8.0", [("001234.5", "kWh")]),
                                                  ("0.9.1", [("123456", None)]),
                                                  ("C.1.0", [("12345678", None)])])
    readout = decode_readout(raw)
    assert readout.kind == "mode_c" and readout.checksum_valid is True
    assert decode_readout(b"\r\n" + raw).values.keys() == readout.values.keys()
    assert readout.identification.manufacturer == "ABC" and readout.identification.enhanced_id == "2"
    assert readout.values["x-x:1.8.0.255"].value == Decimal("1234.5")
    assert readout.values["x-x:1.8.0.255"].unit == "kWh"
    broken = bytearray(raw)
    broken[-5] ^= 0x02
    with pytest.raises(ChecksumError):
        decode_readout(bytes(broken))


def test_p1_round_trip_and_timestamps() -> None:
    raw = build_p1_telegram("XMX5TEST", [("0-0:1.0.0", [("240115120000W", None)]),
                                         ("0-1:24.2.1", [("240715120000S", None), ("00012.345", "m3")]),
                                         ("1-0:1.7.0", [("01.250", "kW")])])
    readout = decode_readout(raw)
    assert readout.checksum_valid is True
    assert readout.values["0-0:1.0.0.255"].value.isoformat() == "2024-01-15T12:00:00+01:00"
    gas = readout.values["0-1:24.2.1.255"]
    assert gas.timestamp is not None and gas.timestamp.isoformat() == "2024-07-15T12:00:00+02:00"
    assert (gas.value, gas.unit) == (Decimal("12.345"), "m3")


@pytest.mark.parametrize("raw", [b"", b"/ABC5X\r\n", b"garbage", b"/ABC5X\r\n\x021.8.0(1\x03\x00",
                                 b"/AB\r\n\r\n!", b"/XYZ5A\r\n\r\n1-0:1.8.0(1)\r\n!ZZZZ\r\n"])
def test_bad_readouts_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_readout(raw)
