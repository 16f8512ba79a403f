"""Data record decoding rules, one at a time, on hand-built records (EN 13757-3)."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

import pytest

from flexmeter.iot_agents.mbus import records as rec_mod
from flexmeter.iot_agents.mbus.errors import DataFieldError, TooManyExtensionsError, TruncatedRecordError
from flexmeter.iot_agents.mbus.records import parse_records


def one(hexdata: str) -> rec_mod.Record:
    data = bytes.fromhex(hexdata)
    out = parse_records(data, 0, len(data))
    assert len(out) == 1
    return out[0]


@pytest.mark.parametrize(("hexdata", "value", "unit"), [
    ("0C13 78563412", Decimal("12345.678"), "m³"),          # 8-digit BCD, 10^-3 m³
    ("0A5A 5507", Decimal("75.5"), "°C"),                    # flow temperature 10^-1 °C
    ("0C06 785634F2", -2345678000, "Wh"),                    # negative BCD (F nibble), kWh → Wh
    ("0403 FFFFFFFF", -1, "Wh"),                             # signed 32-bit integer
    ("0704 0100000000000000", 10, "Wh"),                     # 64-bit integer
    ("0622 010000000000", 3600, "s"),                        # 48-bit integer, on time in hours → s
    ("033B 010000", Decimal("0.001"), "m³/h"),               # 24-bit, volume flow 10^-3 m³/h
    ("0244 0100", Decimal("0.06"), "m³/h"),                  # volume flow ext 10^-3 m³/min → m³/h, exact
    ("0E03 563412907856", 567890123456, "Wh"),               # 12-digit BCD
    ("01FD1B 05", 5, ""),                                     # FD table: digital input
    ("02FD48 E803", Decimal("100.0"), "V"),                  # FD 48: 10^-1 V
    ("02FB1A 1705", Decimal("130.3"), "%"),                  # FB 1A: relative humidity 10^-1 %
])
def test_numeric_values_exact_and_scaled(hexdata: str, value: object, unit: str) -> None:
    r = one(hexdata.replace(" ", ""))
    assert r.value == value and type(r.value) is type(value)
    assert r.unit == unit


def test_real32_with_vif_exponent() -> None:
    data = bytes.fromhex("0513") + struct.pack("<f", 12.5)
    r = one(data.hex())
    assert r.value == Decimal("0.0125") and r.unit == "m³"


def test_dife_chain_storage_tariff_subunit() -> None:
    # DIF C4 (storage LSB 1, ext), DIFE 9F (storage nibble F, tariff 1, ext), DIFE 7A (subunit 1, tariff 3, storage A)
    r = one("C49F7A 03 01000000")
    assert r.storage == 1 | (0xF << 1) | (0xA << 5)
    assert r.tariff == 1 | (3 << 2)
    assert r.subunit == 0 | (1 << 1)
    assert r.dif == bytes.fromhex("C49F7A") and r.vif == b"\x03"


@pytest.mark.parametrize(("dif_bits", "function"), [(0x00, "instantaneous"), (0x10, "maximum"),
                                                    (0x20, "minimum"), (0x30, "error")])
def test_function_field(dif_bits: int, function: str) -> None:
    assert one(f"{0x01 | dif_bits:02X}13 07").function == function


def test_date_types() -> None:
    assert one("026C 1F3C").value == dt.date(2024, 12, 31)          # G: day 31 is a real day
    assert one("046D 32371F15").value == dt.datetime(2008, 5, 31, 23, 50)  # F
    assert one("066D 0A1E0BD11300").value == dt.datetime(2014, 3, 17, 11, 30, 10)  # I (2014-03-17 Mon)
    assert one("036D 0A1E0B").value == dt.time(11, 30, 10)           # J


def test_date_every_markers_and_invalid_bit() -> None:
    assert one("026C 000F").value == "2000-*-*"                  # every day of every month (month 15)
    assert one("026C E1FF").value == "*-*-01"                    # year 127 = every year
    assert one("026C 0000").value == "2000-00-00"                # not set: month 0, rendered raw
    r = one("046D B2371F15")                                      # IV bit set
    assert r.value == dt.datetime(2008, 5, 31, 23, 50) and "date_invalid" in r.flags
    assert "summer_time" in one("046D 32B71F15").flags


def test_lvar_ranges() -> None:
    assert one("0DFD11 03 434241").value == "ABC"                  # text, sent last char first
    assert one("0D13 C2 3412").value == Decimal("1.234")            # positive BCD
    assert one("0D13 D2 3412").value == Decimal("-1.234")           # negative BCD
    assert one("0D13 E2 3412").value == Decimal("4.660")            # binary 2 bytes: 0x1234 = 4660
    assert one("0DFD11 F0" + "01" + "00" * 15).value == 1           # F0: 16-byte binary
    assert one("0DFD11 F1" + "00" * 19 + "01").value == 1 << 152    # F1: 20 bytes
    with pytest.raises(DataFieldError):
        one("0DFD11 F7 00")


def test_plain_text_vif_followed_by_vifes() -> None:
    r = one("02FC 03 485225 74 D411")                  # "%RH" with VIFE 74 (x10^-2)
    assert r.unit == "%RH" and r.quantity == "plain_text" and r.value == Decimal("45.64")


def test_combinable_vifes() -> None:
    r = one("0493FF 7D 01000000")                        # VIFE FF: the VIFEs after it are manufacturer's
    assert "manufacturer_vife" in r.flags and r.value == Decimal("0.001")
    r = one("04937D 01000000")                            # VIF 13 + VIFE 7D (x10^3)
    assert r.value == 1 and r.qualifiers == ("multiplier_1e3",)
    r = one("0483 22 02000000")                           # energy per hour
    assert r.unit == "Wh/h"
    r = one("04ED 39 32371F15")                           # datetime, "start date/time of"
    assert r.value == dt.datetime(2008, 5, 31, 23, 50)


def test_unknown_vife_flags_and_goes_on() -> None:
    data = bytes.fromhex("0493C47D01000000" + "0213 0500")   # VIFE 44 is not in the combinable table
    recs = parse_records(data, 0, len(data))
    assert "unknown_vife" in recs[0].flags and recs[0].qualifiers == ("vife_44", "multiplier_1e3")
    assert recs[0].value == 1
    assert recs[1].value == Decimal("0.005")


def test_manufacturer_vif_and_special_functions() -> None:
    data = bytes.fromhex("02FF20 0A00" + "2F2F" + "0F 010203")
    recs = parse_records(data, 0, len(data))
    assert "manufacturer_vif" in recs[0].flags and recs[0].value == 10
    assert recs[1].function == "manufacturer_specific" and recs[1].value == "010203"
    data = bytes.fromhex("0213 0100 1F")
    recs = parse_records(data, 0, len(data))
    assert recs[-1].function == "more_records_follow" and recs[-1].value == ""


def test_bcd_error_nibbles_are_flagged_not_numbers() -> None:
    r = one("0B3B DDEBBD")
    assert r.value == "BDEBDD" and "bcd_error" in r.flags


def test_structural_errors() -> None:
    with pytest.raises(TruncatedRecordError):
        one("0C13 7856")
    with pytest.raises(TooManyExtensionsError):
        one("8" + "F" * 0 + "4" + "80" * 10 + "00 13 00000000")
    with pytest.raises(TooManyExtensionsError):
        one("04 93" + "80" * 10 + "00 00000000")
    with pytest.raises(DataFieldError):
        one("3F")


def test_layout_cache_gives_identical_records() -> None:
    data = bytes.fromhex("0C13785634120A5A5507046D32371F1502FD170000")
    rec_mod.LAYOUT_CACHE = False
    try:
        cold = [(r.spec, r.raw, r.offset) for r in parse_records(data, 0, len(data))]
    finally:
        rec_mod.LAYOUT_CACHE = True
    first = [(r.spec, r.raw, r.offset) for r in parse_records(data, 0, len(data))]
    warm = [(r.spec, r.raw, r.offset) for r in parse_records(data, 0, len(data))]
    assert cold == first == warm
    changed = bytearray(data)
    changed[2] = 0x99  # a value byte: same layout, new value
    assert parse_records(bytes(changed), 0, len(changed))[0].value == Decimal("12345.699")
    changed[1] = 0x14  # a structural byte: the layout must not be reused blindly
    assert parse_records(bytes(changed), 0, len(changed))[0].value == Decimal("123456.99")
