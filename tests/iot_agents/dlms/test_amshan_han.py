"""amshan HAN corpus: 13 messages x 2 input forms, every asserted field equal.

amshan names fields its own way; the table below maps each name to the OBIS quantity (groups C.D.E) our
decoder keys its values by. Channel groups A/B are ignored on purpose: Kamstrup sends B=1
(``1-1:1.7.0.255``) where Aidon and Kaifa send B=0 for the same quantity, and amshan folds both.
Fields that are not OBIS values in the frame:
- ``meter_manufacturer``: the list profile's manufacturer (our data files), not a frame field.
- ``list_ver_id``: the push's list version (Kamstrup sends it without an OBIS code).
- ``meter_datetime``: the clock element ``0-x:1.0.0.255`` when the list has one, else the
  DATA-NOTIFICATION's date-time (amshan does the same: only the llc_pdu form carries that header).
amshan asserts 183 fields over the 13 messages (llc form); 170 without ``meter_manufacturer``.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flexmeter.iot_agents.dlms.decoder import DlmsMessage, decode_dlms
from flexmeter.iot_agents.dlms.obis import obis_cde

AMSHAN_TO_OBIS: dict[str, str] = {
    "active_power_import": "1.7.0", "active_power_export": "2.7.0",
    "reactive_power_import": "3.7.0", "reactive_power_export": "4.7.0",
    "active_power_import_l1": "21.7.0", "active_power_import_l2": "41.7.0",
    "active_power_import_l3": "61.7.0",
    "active_power_export_l1": "22.7.0", "active_power_export_l2": "42.7.0",
    "active_power_export_l3": "62.7.0",
    "reactive_power_import_l1": "23.7.0", "reactive_power_import_l2": "43.7.0",
    "reactive_power_import_l3": "63.7.0",
    "reactive_power_export_l1": "24.7.0", "reactive_power_export_l2": "44.7.0",
    "reactive_power_export_l3": "64.7.0",
    "current_l1": "31.7.0", "current_l2": "51.7.0", "current_l3": "71.7.0",
    "voltage_l1": "32.7.0", "voltage_l2": "52.7.0", "voltage_l3": "72.7.0",
    "active_power_import_total": "1.8.0", "active_power_export_total": "2.8.0",
    "reactive_power_import_total": "3.8.0", "reactive_power_export_total": "4.8.0",
    "meter_id": "96.1.0|0.0.5",  # Aidon/Kaifa 0-0:96.1.0.255, Kamstrup 1-1:0.0.5.255
    "meter_type": "96.1.7|96.1.1",  # Aidon/Kaifa 0-0:96.1.7.255, Kamstrup 1-1:96.1.1.255
}


def _vectors() -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "amshan" / "han_dlms"
    path = path / "han_frames.json"
    return json.loads(path.read_text())


VECTORS = _vectors()


def _by_cde(msg: DlmsMessage) -> dict[str, Any]:
    return {obis_cde(obis): v.value for obis, v in msg.values.items()}


def amshan_view(msg: DlmsMessage) -> dict[str, Any]:
    """Our decode in amshan's vocabulary (only the names the table knows)."""
    by_cde = _by_cde(msg)
    out: dict[str, Any] = {}
    for name, codes in AMSHAN_TO_OBIS.items():
        for code in codes.split("|"):
            if code in by_cde:
                out[name] = by_cde[code]
    assert msg.push is not None
    out["meter_manufacturer"] = msg.push.manufacturer
    if msg.push.list_version is not None:
        out["list_ver_id"] = msg.push.list_version
    if msg.timestamp is not None:
        out["meter_datetime"] = msg.timestamp
    return out


def _equal(expected: Any, got: Any) -> bool:
    if isinstance(expected, dict) and "datetime" in expected:
        return isinstance(got, datetime) and got.isoformat() == expected["datetime"]
    if isinstance(expected, bool | str):
        return bool(got == expected)
    if isinstance(expected, int | float):
        return isinstance(got, Decimal) and abs(got - Decimal(repr(expected))) <= Decimal("1e-9")
    return bool(got == expected)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_every_asserted_field(vector: dict[str, Any]) -> None:
    msg = decode_dlms(bytes.fromhex(vector["hex"]))
    view = amshan_view(msg)
    for name, expected in vector["expected"].items():
        assert name in view, f"{name} missing"
        assert _equal(expected, view[name]), f"{name}: expected {expected!r}, got {view[name]!r}"


def test_field_totals() -> None:
    llc = [v for v in VECTORS if v["input_kind"] == "llc_pdu"]
    assert len(llc) == 13 and len(VECTORS) == 26
    asserted = sum(len(v["expected"]) for v in llc)
    assert asserted == 183
    assert asserted - sum("meter_manufacturer" in v["expected"] for v in llc) == 170


def test_notification_date_time_forms() -> None:
    forms = {}
    for vector in VECTORS:
        if vector["input_kind"] == "llc_pdu":
            msg = decode_dlms(bytes.fromhex(vector["hex"]))
            assert msg.apdu is not None and msg.apdu.kind == "data-notification"
            forms[vector["meter"]] = msg.apdu.date_time_form  # type: ignore[union-attr]
    assert forms == {"aidon": "absent", "kaifa": "typed", "kamstrup": "length"}


def test_units_after_scaler() -> None:
    se_list = next(v for v in VECTORS if v["id"] == "aidon:test_decode_frame_se_list:llc_pdu")
    msg = decode_dlms(bytes.fromhex(se_list["hex"]))
    current = msg.values["1-0:51.7.0.255"]
    assert (current.value, current.unit, current.scaler, current.raw) == (Decimal("7.5"), "A", -1, 75)
    energy = msg.values["1-0:1.8.0.255"]
    assert (energy.value, energy.unit) == (Decimal(10049926), "Wh")
    kaifa = next(v for v in VECTORS if v["id"] == "kaifa:test_decode_frame_se_list:llc_pdu")
    clock = decode_dlms(bytes.fromhex(kaifa["hex"])).values["0-0:1.0.0.255"]
    assert clock.cosem_datetime is not None and clock.cosem_datetime.deviation == -60
    assert clock.value.isoformat() == "2021-09-22T17:35:30+01:00"
