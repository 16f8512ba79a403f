"""The libmbus corpus: every frame decodes and its records mean what ``NAME.norm.xml`` says.

Compared by meaning (corpus README): numbers within 1e-6 absolute / 1e-9 relative after scaling, records
by index with function, storage, tariff and subunit. Where libmbus itself is wrong or differs by design,
the record is listed in ``QUIRKS`` with the reason, and the test checks that it differs exactly there.
"""

from __future__ import annotations

import datetime as dt
import struct
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest

from flexmeter.iot_agents.mbus import decode_mbus
from flexmeter.iot_agents.mbus.errors import (
    DecodeError,
    HeaderError,
    TooManyExtensionsError,
    TruncatedRecordError,
)
from flexmeter.iot_agents.mbus.records import T_LVAR, T_REAL
from tests.conftest import CORPUS

FRAMES = sorted(p.name[:-4] for p in (CORPUS / "libmbus" / "test-frames").glob("*.hex"))

FUNCTIONS = {"Instantaneous value": "instantaneous", "Actual value": "instantaneous", "Maximum value": "maximum",
             "Minimum value": "minimum", "Value during error state": "error",
             "Manufacturer specific": "manufacturer_specific", "More records follow": "more_records_follow"}

_BCD_NIBBLES = ("libmbus reads BCD hex nibbles A-F as the values 10-15 and sums them as decimal digits; "
                "EN 13757-3 annex B makes such a BCD value an error marker: we return the hex digits as a "
                "string flagged 'bcd_error'")
_VIFE_DATE = ("VIFE 0x6F ('date/time of last end of limit exceed') makes the record a type F date; libmbus "
              "ignores that VIFE and prints the raw 32-bit integer scaled as the VIF's quantity")
_FIXED = ("fixed data structure (CI 0x73): counter 2 with unit code 0x3E is 'same unit as counter 1, but a "
          "historic value'; libmbus prints the 6-bit code's name 'reserved but historic' unscaled and "
          "storage 0: we give litres→m³ scaled, storage 1")
QUIRKS: dict[tuple[str, int], str] = {
    ("ELS_Elster-F96-Plus", 4): _BCD_NIBBLES, ("ELS_Elster-F96-Plus", 5): _BCD_NIBBLES,
    ("abb_f95", 2): _BCD_NIBBLES, ("abb_f95", 3): _BCD_NIBBLES,
    ("REL-Relay-Padpuls2", 1): ("date with the IV (time invalid) bit set: libmbus prints 1900-01-00 "
                                "(README quirk); we return the date and flag it 'date_invalid'"),
    ("landis+gyr_ultraheat_t230", 19): _VIFE_DATE, ("landis+gyr_ultraheat_t230", 20): _VIFE_DATE,
    ("landis+gyr_ultraheat_t230", 21): _VIFE_DATE, ("landis+gyr_ultraheat_t230", 22): _VIFE_DATE,
    ("landis+gyr_ultraheat_t230", 32): ("year 127 is 'every year' (EN 13757-3:2018); libmbus prints 2027 "
                                        "(README quirk); we give '*-01-01T00:00'"),
    ("manual_frame2", 1): _FIXED,
    ("sen_pollutherm", 2): ("VIF 0x7B without its extension bit: libmbus's normalised output drops the "
                            "record's function and value; we keep the raw value 302 flagged 'reserved_vif'"),
}

# Fixed data structure units that libmbus leaves unscaled (its .norm.xml prints kWh and l).
_LIBMBUS_UNIT_FACTORS = {"kWh": Decimal(1000), "l": Decimal("0.001")}


def _expected(name: str) -> tuple[ET.Element, list[dict[str, str | None]]]:
    root = ET.fromstring((CORPUS / "libmbus" / "test-frames" / f"{name}.norm.xml").read_bytes())
    return root, [{c.tag: c.text for c in rec} for rec in root.findall("DataRecord")]


def _float32_close(mine: Any, exp: float) -> bool:
    # REAL32 values: we give the shortest decimal that round-trips binary32 (what the meter sent, e.g.
    # 18511.912), libmbus prints the binary value with %f (18511.912109): equal as binary32 values.
    return abs(float(mine) - exp) <= 1e-6 + 1.2e-7 * abs(exp)


def _value_matches(rec: Any, exp_text: str | None, unit: str | None) -> bool:
    raw_text = exp_text or ""
    exp = raw_text.strip()
    v = rec.value
    if rec.function in ("manufacturer_specific", "more_records_follow"):
        return str(v or "").upper() == exp.replace(" ", "").upper()
    if rec.spec.dtype == T_LVAR and isinstance(v, int) and " " in exp:
        # libmbus prints a binary LVAR (0xE0-0xF6) as hex bytes, most significant first
        return v == int.from_bytes(bytes.fromhex(exp), "big")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S") == exp.rstrip("Z")
    if isinstance(v, dt.date):
        return v.isoformat() == exp
    if isinstance(v, str):
        if "T" in v and exp.endswith("Z"):
            return exp.rstrip("Z").startswith(v)
        return v == raw_text
    try:
        e = float(exp)
    except ValueError:
        return False
    if unit in _LIBMBUS_UNIT_FACTORS:
        e = float(Decimal(exp) * _LIBMBUS_UNIT_FACTORS[unit])
    if rec.spec.dtype == T_REAL:
        return _float32_close(v, e)
    return isinstance(v, (int, Decimal)) and abs(float(v) - e) <= 1e-6 + 1e-9 * abs(e)


@pytest.mark.parametrize("name", FRAMES)
def test_frame_matches_libmbus(name: str) -> None:
    frame = (CORPUS / "libmbus" / "test-frames" / f"{name}.hex").read_text()
    tel = decode_mbus(frame)
    root, expected = _expected(name)
    info = {c.tag: c.text for c in root.find("SlaveInformation") or []}
    assert (tel.id or "").lstrip("0") == (info["Id"] or "").lstrip("0")  # libmbus drops leading zeros
    assert tel.access_number == int(info["AccessNumber"] or "0")
    assert tel.status == int(info["Status"] or "0", 16)
    if info.get("Manufacturer"):
        assert tel.manufacturer == info["Manufacturer"]
        assert tel.version == int(info["Version"] or "0")
    assert len(tel.records) == len(expected)
    differing = set()
    for i, (rec, exp) in enumerate(zip(tel.records, expected, strict=True)):
        same = (FUNCTIONS.get(exp.get("Function") or "") == rec.function
                and int(exp.get("StorageNumber") or 0) == rec.storage
                and int(exp.get("Tariff") or 0) == rec.tariff
                and int(exp.get("Device") or 0) == rec.subunit
                and _value_matches(rec, exp.get("Value"), exp.get("Unit")))
        if not same:
            differing.add(i)
    listed = {i for (frame_name, i) in QUIRKS if frame_name == name}
    assert differing == listed, f"records differing from libmbus: {sorted(differing)}, listed quirks: {listed}"


def test_quirks_name_existing_records() -> None:
    for name, index in QUIRKS:
        assert name in FRAMES
        assert index < len(_expected(name)[1])


def test_units_are_si_after_scaling() -> None:
    tel = decode_mbus((CORPUS / "libmbus" / "test-frames" / "EDC.hex").read_text())
    energy = tel.records[0]
    assert (energy.quantity, energy.unit, energy.value) == ("energy", "Wh", 35000)
    tel = decode_mbus((CORPUS / "libmbus" / "test-frames" / "oms_frame1.hex").read_text())
    assert tel.records[0].value == Decimal("28504.27") and tel.records[0].unit == "m³"
    assert tel.records[1].value == dt.datetime(2008, 5, 31, 23, 50)


def test_real32_keeps_vif_exponent() -> None:
    # amt_calec_mb record 1: DIF 05 (REAL32) VIF 2E (power, 10^3 W): 13426.156 kW → 13426156 W
    tel = decode_mbus((CORPUS / "libmbus" / "test-frames" / "amt_calec_mb.hex").read_text())
    rec = tel.records[1]
    assert rec.spec.dtype == T_REAL and rec.unit == "W"
    assert struct.pack("<f", float(rec.value) / 1000) == struct.pack("<f", rec.raw)
    assert rec.value == Decimal("13426156")


# Error frames without a .xml must be rejected, each for its own reason.
REJECTED: dict[str, tuple[type[DecodeError], str]] = {
    "premature_end_of_data1": (TruncatedRecordError, "record.data"),
    "premature_end_of_data2": (TruncatedRecordError, "record.data"),
    "premature_end_of_dif1": (TruncatedRecordError, "record.dife"),
    "premature_end_of_dif2": (TruncatedRecordError, "record.dife"),
    "premature_end_of_vif1": (TruncatedRecordError, "record.vif"),
    "premature_end_of_var_vif1": (TruncatedRecordError, "record.plain_vif"),
    "too_long_var_vif": (TruncatedRecordError, "record.plain_vif"),
    "too_many_dife": (TooManyExtensionsError, "record.dife_count"),
    "too_many_vife": (TooManyExtensionsError, "record.vife_count"),
    "too_short_header": (HeaderError, "tpl.long_header"),
}


def test_every_error_frame_without_xml_is_listed() -> None:
    names = {p.name[:-4] for p in (CORPUS / "libmbus" / "error-frames").glob("*.hex")
             if not p.with_suffix(".xml").exists()}
    assert names == set(REJECTED)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_error_frame_rejected(name: str) -> None:
    cls, rule = REJECTED[name]
    with pytest.raises(cls) as info:
        decode_mbus((CORPUS / "libmbus" / "error-frames" / f"{name}.hex").read_text())
    assert info.value.rule == rule
    assert info.value.offset > 0
    assert info.value.telegram is not None  # what was decoded before the error, for diagnostics
    if rule.startswith("record."):
        assert info.value.telegram.id in ("12345678", "54000834")


_LIBMBUS_ERROR_TEXT = {"More than 10 DIFE\u00c2\u00b4s": "More than 10 DIFEs",
                       "More than 10 VIFE\u00c2\u00b4s": "More than 10 VIFEs",
                       "Unimplemented CI-Field": "Unimplemented CI-Field"}


@pytest.mark.parametrize("name", sorted(p.name[:-4] for p in (CORPUS / "libmbus" / "error-frames").glob("*.xml")))
def test_error_frame_with_xml_decodes_like_libmbus(name: str) -> None:
    tel = decode_mbus((CORPUS / "libmbus" / "error-frames" / f"{name}.hex").read_text())
    root = ET.fromstring((CORPUS / "libmbus" / "error-frames" / f"{name}.xml").read_bytes())
    assert len(tel.records) == len(root.findall("DataRecord")) == 0
    assert tel.ci == 0x70  # the slave's application error report
    text = root.findtext("SlaveInformation/Error") or ""
    assert tel.header()["application_error_name"] == _LIBMBUS_ERROR_TEXT.get(text, text)
