"""The DLMS family's decoder and tables, without I/O: pushes built with the dlms builders -> readings ->
entities whose attribute names and unitCodes are the ngsi_models tables'."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Message, Reading, load_family
from flexmeter.iot_agents.core.mapping import DeviceView, EntityUpdate, Mapper
from flexmeter.iot_agents.core.outbox import InboxRow, NewRow, Outbox
from flexmeter.iot_agents.dlms.apdu import build_data_notification
from flexmeter.iot_agents.dlms.cosem_time import CosemDateTime
from flexmeter.iot_agents.dlms.counters import TABLE
from flexmeter.iot_agents.dlms.family import (
    DLMS_ROUTES,
    DlmsFamily,
    ReplayedFrame,
    SecurityFailure,
    object_id,
    readout_measures,
)
from flexmeter.iot_agents.dlms.iec62056_21 import (
    DataLines,
    build_mode_c_readout,
    build_p1_telegram,
    decode_readout,
)
from flexmeter.iot_agents.dlms.mappings import TABLES
from flexmeter.iot_agents.dlms.security import build_ciphered, build_general_glo_ciphering
from flexmeter.iot_agents.dlms.udp import DlmsUdpListener
from flexmeter.iot_agents.dlms.wrappers import encode_hdlc_frame, wrap_udp
from flexmeter.ngsi_models.models.electricity import AC_MEASUREMENT, THREE_PHASE_AC_MEASUREMENT

H = bytes.fromhex
EK = H("000102030405060708090a0b0c0d0e0f")
AK = H("d0d1d2d3d4d5d6d7d8d9dadbdcdddedf")
TITLE = H("535449000012d687")  # "STI" + serial 1234567
TITLE_HEX = TITLE.hex().upper()
CET = timezone(timedelta(hours=1))
T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=CET)
RECEIVED = datetime(2026, 11, 27, 9, 0, 5, tzinfo=UTC)


def register(obis: str, value: int, scaler: int, unit: int, tag: int = 6) -> Any:
    return (2, [(9, H(obis)), (tag, value), (2, [(15, scaler), (22, unit)])])


def user_body(energy_wh: int = 12345678, power_w: int = 1520, export_w: int = 20, volts_dv: int = 2301,
              centiamps: int = 652, name: bytes | None = None) -> Any:
    """A single-phase ST-I user push (self-describing: OBIS, value, scaler/unit)."""
    items = [register("0100010800ff", energy_wh, 0, 30), register("0100010700ff", power_w, 0, 27),
             register("0100020700ff", export_w, 0, 27), register("0100200700ff", volts_dv, -1, 35, tag=18),
             register("01001f0700ff", centiamps, -2, 33, tag=18)]
    if name is not None:
        items.insert(0, (2, [(9, H("00002a0000ff")), (9, name)]))
    return (1, items)


def substation_body() -> Any:
    phases = []
    for c, volts, amps in ((32, 2301, 1702), (52, 2298, 1689), (72, 2304, 1750)):
        phases.append(register(f"0100{c:02x}0700ff", volts, -1, 35, tag=18))
        phases.append(register(f"0100{c - 1:02x}0700ff", amps, -1, 33, tag=18))
    return (1, [(2, [(9, H("00002a0000ff")), (9, b"SUB-TO-0042")]),
                register("0100010800ff", 901234567, 0, 30), register("0100010700ff", 117, 3, 27),
                register("0100020700ff", 0, 0, 27), register("0100030700ff", 189, 2, 29),
                register("0100040700ff", 0, 0, 29), *phases])


def push(body: Any = None, at: datetime = T0) -> bytes:
    return build_data_notification(body if body is not None else user_body(), 1, CosemDateTime.from_datetime(at))


def ggc(counter: int, body: Any = None, at: datetime = T0, *, key: bytes = EK, title: bytes = TITLE) -> bytes:
    """A general-glo-ciphered push (encrypted + authenticated) in the DLMS/UDP wrapper, as G3-PLC sends it."""
    return wrap_udp(build_general_glo_ciphering(push(body, at), title, counter, key, AK))


def secrets(device_id: str) -> Mapping[str, str]:
    return {"dlms_guek": EK.hex(), "dlms_gak": AK.hex()} if device_id in (TITLE_HEX, "MTR-7") else {}


def decode(family: DlmsFamily, payload: bytes, route: int = 0, **params: str) -> list[Any]:
    return family.decode(Message(DLMS_ROUTES[route], payload, {"apikey": "k", "gateway": "gw", **params},
                                 secrets=secrets))


def mapped(reading: Reading, family: DlmsFamily, **device: Any) -> EntityUpdate:
    view = DeviceView({"device_id": reading.device_id, "service": "iren", "service_path": "/turin", **device}, None)
    (update,) = Mapper().map(reading, view, family, RECEIVED)
    return update


def test_registered_in_the_core() -> None:
    assert isinstance(load_family("dlms"), DlmsFamily)


def test_ggc_push_decrypts_to_a_single_phase_reading_with_the_meter_time() -> None:
    family = DlmsFamily()
    (reading,) = decode(family, ggc(5))
    assert reading.device_id == TITLE_HEX and reading.model == "SINGLE_PHASE"
    assert reading.values == {"1.8.0": 12345.678, "1.7.0": 1520, "2.7.0": 20, "16.7.0": 1500, "32.7.0": 230.1,
                              "31.7.0": 6.52}
    assert reading.units["1.8.0"] == "KWH" and reading.units["32.7.0"] == "VLT"
    assert reading.observed_at == T0
    update = mapped(reading, family)
    assert update.entity_id == f"ACMeasurement:{TITLE_HEX}"
    attrs = update.attrs
    assert attrs["totalActiveEnergyImport"]["value"] == 12345.678
    assert attrs["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
    assert attrs["totalActivePower"]["value"] == 1500
    assert attrs["phaseVoltage"]["value"] == {"L": 230.1}
    assert attrs["current"]["value"] == {"L": 6.52}
    assert attrs["phaseType"]["value"] == "singlePhase"
    assert attrs["TimeInstant"]["value"] == "2026-11-27T09:00:00.000Z"


def test_replayed_counter_is_rejected_per_system_title_and_a_forged_frame_does_not_advance_it() -> None:
    family = DlmsFamily()
    decode(family, ggc(5))
    assert decode(family, ggc(5)) == [] and family.duplicates_dropped == 1  # the same bytes: a redelivery
    with pytest.raises(ReplayedFrame) as info:  # other bytes under the same counter: a replay
        decode(family, ggc(5, user_body(power_w=1), at=T0 + timedelta(seconds=1)))
    assert info.value.name == "REPLAYED_FRAME" and "5 <= 5" in info.value.message
    with pytest.raises(ReplayedFrame):
        decode(family, ggc(4))
    with pytest.raises(SecurityFailure) as wrong:
        decode(family, ggc(9, key=bytes(16)))
    assert "wrong_key" in wrong.value.message or "key" in wrong.value.message
    (later,) = decode(family, ggc(6, at=T0 + timedelta(seconds=1)))
    assert later.observed_at == T0 + timedelta(seconds=1)
    other = H("535449000012d688")
    with pytest.raises(SecurityFailure, match="no DLMS keys provisioned"):
        decode(family, ggc(1, title=other))
    # another service group keeps its own guard: the same counter is new there
    (again,) = family.decode(Message(DLMS_ROUTES[0], ggc(5), {"apikey": "k2"}, secrets=secrets))
    assert again.device_id == TITLE_HEX


TENANTS = {"k": "iren", "k-moved": "iren", "k-eon": "eon"}


def counters_family(path: Path, legacy_dir: Path | None = None) -> tuple[DlmsFamily, Outbox]:
    """A family whose counters live in a real outbox file (as ``start`` does with the agent's)."""
    outbox = Outbox(path)
    family = DlmsFamily()
    family.use_outbox(outbox.join, TENANTS.get, legacy_dir)
    return family, outbox


def rows(readings: list[Any]) -> list[NewRow]:
    return [NewRow("iren", "/turin", json.dumps({"id": r.device_id, "type": "ACMeasurement"}), "dlms", 0.0)
            for r in readings]


def stored_counters(path: Path) -> dict[tuple[str, bytes], int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {(t, bytes(s)): c for t, s, c in db.execute(f"SELECT tenant, system_title, counter FROM {TABLE}")}


def test_a_counter_is_durable_only_with_the_readings_it_guarded(tmp_path: Path) -> None:
    """A push taken from the inbox and decoded, then the process dies before the outbox commit: after the
    restart the same push (still in the inbox, or redelivered) is accepted, not a replay. Once its reading is
    committed, the counter is stored in the same transaction and a replay is refused after a restart."""
    path = tmp_path / "outbox.db"
    first, outbox = counters_family(path)
    outbox.put_inbox([InboxRow("dlms", "mqtt", DLMS_ROUTES[0].pattern, {"apikey": "k"}, ggc(7), None, 0.0)])
    ((_, raw),) = outbox.take_inbox(10)
    decode(first, raw.payload)
    assert decode(first, raw.payload) == []  # a second copy before the commit: dropped, its reading is in
    with pytest.raises(ReplayedFrame):  # an older push before the commit: already refused
        decode(first, ggc(6))
    assert stored_counters(path) == {}
    outbox.close()  # the crash: decoded, never committed

    second, outbox = counters_family(path)
    ((inbox_id, raw),) = outbox.take_inbox(10)  # the message is still there (no PUBACK was lost either)
    readings = decode(second, raw.payload)  # not a replay
    assert readings[0].values["1.7.0"] == 1520
    outbox.move_processed([inbox_id], rows(readings), [])
    assert stored_counters(path) == {("iren", TITLE): 7} and outbox.depth() == 1
    assert second.counters.durable(("iren", TITLE)) == 7
    outbox.close()

    third, outbox = counters_family(path)
    with pytest.raises(ReplayedFrame) as info:
        decode(third, ggc(7))
    assert "7 <= 7" in info.value.message
    (later,) = decode(third, ggc(8, at=T0 + timedelta(seconds=1)))
    assert later.observed_at == T0 + timedelta(seconds=1)
    outbox.close()


def test_a_failed_commit_neither_stores_the_counter_nor_makes_the_retry_a_replay(tmp_path: Path) -> None:
    """A real SQLite failure (a trigger aborting the outbox insert) rolls the counter back with the readings:
    the pipeline's retry of the same batch (decoded again, or the same rows put again) is accepted and stores
    it with the readings."""
    path = tmp_path / "outbox.db"
    family, outbox = counters_family(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TRIGGER full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        db.commit()
    readings = decode(family, ggc(7))
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        outbox.put(rows(readings))
    assert stored_counters(path) == {}
    readings = decode(family, ggc(7))  # the inbox batch decoded again: not a replay
    with pytest.raises(sqlite3.IntegrityError):
        outbox.put(rows(readings))
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP TRIGGER full")
        db.commit()
    outbox.put(rows(readings))  # the HTTP path's retry: the same rows, not decoded again
    assert stored_counters(path) == {("iren", TITLE): 7}
    assert decode(family, ggc(7)) == []  # a copy of the stored push: dropped
    with pytest.raises(ReplayedFrame):
        decode(family, ggc(6))
    outbox.close()


def test_counters_follow_the_meter_within_its_tenant_and_old_files_are_migrated(tmp_path: Path) -> None:
    """Keyed by (tenant, system title): the meter moved to another service group of its tenant keeps its
    counter; another tenant's meter with the same title has its own. A dlms-counters.db of the earlier
    version (keyed by apikey) is migrated into the outbox and renamed."""
    legacy = tmp_path / "dlms-counters.db"
    with contextlib.closing(sqlite3.connect(legacy)) as db:
        db.execute("CREATE TABLE invocation_counters (apikey TEXT NOT NULL, system_title BLOB NOT NULL, "
                   "counter INTEGER NOT NULL, PRIMARY KEY (apikey, system_title))")
        db.executemany("INSERT INTO invocation_counters VALUES (?, ?, ?)",
                       [("k", TITLE, 40), ("k-eon", TITLE, 3), ("gone", H("535449000012d688"), 9)])
        db.commit()
    path = tmp_path / "outbox.db"
    family, outbox = counters_family(path, legacy_dir=tmp_path)
    assert not legacy.exists() and (tmp_path / "dlms-counters.db.migrated").exists()
    assert stored_counters(path) == {("iren", TITLE): 40, ("eon", TITLE): 3}  # "gone": no group, not migrated
    with pytest.raises(ReplayedFrame, match="40 <= 40"):
        decode(family, ggc(40), apikey="k-moved")  # the same meter in another group of its tenant
    (reading,) = decode(family, ggc(41), apikey="k-moved")
    outbox.put(rows([reading]))
    (eon,) = decode(family, ggc(4), apikey="k-eon")  # another tenant: its own counters
    outbox.put(rows([eon]))
    outbox.close()
    again, outbox = counters_family(path, legacy_dir=tmp_path)  # a restart: nothing left to migrate
    with pytest.raises(ReplayedFrame, match="41 <= 41"):
        decode(again, ggc(41), apikey="k")
    with pytest.raises(ReplayedFrame, match="4 <= 4"):
        decode(again, ggc(4), apikey="k-eon")
    # an apikey no group has: a guard of its own, in memory only (its messages are dead letters anyway)
    decode(again, ggc(2), apikey="nobody")
    with pytest.raises(ReplayedFrame):
        decode(again, ggc(1), apikey="nobody")
    outbox.put([], [])
    assert stored_counters(path) == {("iren", TITLE): 41, ("eon", TITLE): 4}
    outbox.close()


def test_input_forms_hex_lines_hdlc_and_glo_ciphering_without_system_title() -> None:
    family = DlmsFamily()
    lines = b"\n".join(ggc(n, at=T0 + timedelta(seconds=n)).hex().encode() for n in (1, 2, 3)) + b"\n"
    readings = decode(family, lines)
    assert [r.observed_at for r in readings] == [T0 + timedelta(seconds=n) for n in (1, 2, 3)]  # 1 Hz stays 1 Hz
    hdlc = encode_hdlc_frame(b"\xe6\xe7\x00" + push(user_body(power_w=99)))
    (reading,) = decode(family, hdlc, route=1, meter="MTR-9")
    assert reading.device_id == "MTR-9" and reading.values["1.7.0"] == 99
    glo = build_ciphered(0xCF, push(), TITLE, 10, EK, AK)  # glo-data-notification: no system title inside
    (reading,) = decode(family, glo, route=1, meter=TITLE_HEX)
    assert reading.device_id == TITLE_HEX
    with pytest.raises(DecodeError, match="odd number of hex digits"):
        decode(family, b"0f0")


def test_plain_push_is_named_by_its_logical_device_name_else_refused() -> None:
    family = DlmsFamily()
    (reading,) = decode(family, push(user_body(name=b"STI-LDN-0001")))
    assert reading.device_id == "STI-LDN-0001"
    with pytest.raises(DecodeError, match="name the meter in the topic"):
        decode(family, push())
    with pytest.raises(DecodeError) as bad:
        decode(family, b"\x0f\x00\x00")
    assert bad.value.name == "WRONG_SYNTAX"


def test_substation_push_maps_to_three_phase_ac_measurement() -> None:
    family = DlmsFamily()
    (reading,) = decode(family, push(substation_body()))
    assert reading.device_id == "SUB-TO-0042" and reading.model == "SUBSTATION"
    update = mapped(reading, family)
    assert update.entity_type == "ThreePhaseAcMeasurement"
    attrs = update.attrs
    assert attrs["totalActivePower"]["value"] == 117000
    assert attrs["totalReactivePower"]["value"] == 18900
    assert attrs["totalReactivePower"]["metadata"]["unitCode"]["value"] == "D44"
    assert attrs["phaseVoltage"]["value"] == {"L1": 230.1, "L2": 229.8, "L3": 230.4}
    assert attrs["current"]["value"] == {"L1": 170.2, "L2": 168.9, "L3": 175}
    assert attrs["totalActiveEnergyImport"]["value"] == 901234.567
    assert "phaseType" not in attrs
    customer = mapped(reading, family, internal_attributes={"model": "THREE_PHASE"})  # provisioned model wins
    assert customer.entity_type == "ACMeasurement" and customer.attrs["phaseType"]["value"] == "threePhase"
    assert customer.attrs["current"]["value"] == {"L1": 170.2, "L2": 168.9, "L3": 175}


P1_LINES: DataLines = [
    ("0-0:1.0.0", [("261127100000W", None)]),
    ("0-0:96.1.1", [("4530303336303030303037363631383133", None)]),
    ("1-0:1.8.1", [("001234.567", "kWh")]), ("1-0:1.8.2", [("000100.001", "kWh")]),
    ("1-0:2.8.1", [("000001.000", "kWh")]), ("1-0:2.8.2", [("000000.500", "kWh")]),
    ("1-0:1.7.0", [("01.193", "kW")]), ("1-0:2.7.0", [("00.000", "kW")]),
    ("1-0:32.7.0", [("229.0", "V")]), ("1-0:31.7.0", [("005", "A")]),
    ("0-1:24.2.1", [("261127095500W", None), ("00012.345", "m3")]),
]


def test_p1_telegram_becomes_a_household_reading_with_summed_tariffs() -> None:
    family = DlmsFamily()
    (reading,) = decode(family, build_p1_telegram("ISK5\\2M550T-1012", P1_LINES), route=1, meter="P1-0001")
    assert reading.device_id == "P1-0001" and reading.model == "SINGLE_PHASE"
    assert reading.values["1.8.0"] == 1334.568 and reading.values["2.8.0"] == 1.5
    assert reading.values["16.7.0"] == 1193 and reading.values["32.7.0"] == 229
    assert "0-1:24.2.1.255" not in reading.values  # gas is the M-Bus family's
    assert reading.observed_at == datetime(2026, 11, 27, 10, 0, 0, tzinfo=CET)
    attrs = mapped(reading, family).attrs
    assert attrs["activeEnergyImportTariff1"]["value"] == 1234.567
    assert attrs["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
    # named by its equipment identifier when the route does not name it
    (named,) = decode(family, build_p1_telegram("ISK5\\2M550T-1012", P1_LINES))
    assert named.device_id == "4530303336303030303037363631383133"
    with pytest.raises(DecodeError, match=r"crc|CRC|checksum"):
        decode(family, build_p1_telegram("ISK5\\2M550T-1012", P1_LINES)[:-4] + b"0000\r\n")


ECHELON_LINES: DataLines = [
    ("C.1.0", [("ECH-SUB-1", None)]), ("1.8.0", [("901234.5", "kWh")]), ("2.8.0", [("103.7", "kWh")]),
    ("1.7.0", [("120.5", "kW")]), ("2.7.0", [("3.5", "kW")]), ("3.7.0", [("21.0", "kvar")]),
    ("32.7.0", [("230.1", "V")]), ("52.7.0", [("229.8", "V")]), ("72.7.0", [("230.4", "V")]),
    ("31.7.0", [("170.2", "A")]), ("C.7.1", [("0", None)]), ("81.7.40", [("0.24", None)]),
]


def test_mode_c_readout_keys_match_the_connode_echelon_table() -> None:
    readout = build_mode_c_readout("LGZ5\\2ZMD4104", ECHELON_LINES)
    values, units = readout_measures(decode_readout(readout))
    assert values["1.7.0"] == 120.5 and units["1.7.0"] == "KWT"  # the Echelon table's unit: kW, as sent
    assert values["C.7.1"] == 0 and values["81.7.40"] == 0.24 and units["3.7.0"] == "KVR"
    connode = load_family("connode")
    echelon_keys = {a["object_id"] for a in connode.default_attributes("ECHELON") if a.get("object_id")}
    assert set(values) <= echelon_keys
    family = DlmsFamily()
    (reading,) = decode(family, readout)
    assert reading.device_id == "ECH-SUB-1" and reading.model == "SUBSTATION"
    assert reading.values["1.7.0"] == 120500 and reading.values["16.7.0"] == 117000  # normalised to W
    assert reading.values["3-4.7.0"] == 21000
    with pytest.raises(DecodeError, match=r"BCC|bcc|checksum"):
        decode(family, readout[:-1] + bytes((readout[-1] ^ 0x55,)))


@pytest.mark.parametrize(("obis", "key"), [("1-0:1.8.0.255", "1.8.0"), ("1-1:32.7.0.255", "32.7.0"),
                                           ("x-x:C.7.1.255", "C.7.1"), ("0-0:96.1.0.255", "0-0:96.1.0.255"),
                                           ("1-0:1.8.0.101", "1-0:1.8.0.101"), ("0-1:24.2.1.255", "0-1:24.2.1.255")])
def test_object_ids(obis: str, key: str) -> None:
    assert object_id(obis) == key


EXTENSIONS = {"activeEnergyImportTariff1", "activeEnergyImportTariff2", "activeEnergyExportTariff1",
              "activeEnergyExportTariff2", "totalActivePowerImport", "totalActivePowerExport"}


@pytest.mark.parametrize("model", sorted(TABLES))
def test_tables_agree_with_the_ngsi_models(model: str) -> None:
    family = DlmsFamily()
    table = THREE_PHASE_AC_MEASUREMENT if family.entity_type(model) == "ThreePhaseAcMeasurement" else AC_MEASUREMENT
    rows = {row.attribute: row for row in table.rows}
    for entry in TABLES[model]:
        name = entry["name"]
        if name in EXTENSIONS and name not in rows:
            continue
        assert name in rows, (model, name)
        unit = entry.get("metadata", {}).get("unitCode", {}).get("value")
        assert unit == rows[name].unit, (model, name, unit)
        if entry.get("component"):
            assert entry["component"] in (*rows[name].keys, "L"), (model, name, entry["component"])


def test_udp_datagrams_are_submitted_as_messages() -> None:
    family = DlmsFamily()
    got: list[Message] = []
    arrived = threading.Event()

    def submit(_family: Any, message: Message) -> None:
        got.append(message)
        arrived.set()

    listener = DlmsUdpListener(family, submit, host="127.0.0.1", port=0, apikey="turin-udp")
    listener.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(ggc(77), listener.address)
        assert arrived.wait(5)
    finally:
        listener.stop()
    (message,) = got
    assert message.apikey == "turin-udp"
    (reading,) = family.decode(Message(message.route, message.payload, message.params, secrets=secrets))
    assert isinstance(reading, Reading)
    assert reading.device_id == TITLE_HEX and reading.values["1.7.0"] == 1520


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), position=st.integers(min_value=0, max_value=400),
       flip=st.integers(min_value=1, max_value=255), hexed=st.booleans())
def test_any_input_is_a_reading_or_a_decode_error(data: bytes, position: int, flip: int, hexed: bool) -> None:
    """Random bytes and mutated real pushes: the family raises nothing but the core's DecodeError."""
    family = DlmsFamily()
    for candidate in (data, _mutate(ggc(1), position, flip), _mutate(push(substation_body()), position, flip)):
        body = candidate.hex().encode() if hexed else candidate
        with contextlib.suppress(DecodeError):
            decode(family, body)


def _mutate(frame: bytes, position: int, flip: int) -> bytes:
    index = position % len(frame)
    return frame[:index] + bytes((frame[index] ^ flip,)) + frame[index + 1:]
