"""The bytes each meter sends, built with the project's own encoders (pure functions, no I/O).

- Turin heat: wired M-Bus RSP_UD (CI 0x72), records in exact integer units (Wh, l, W, l/h, 0.01 °C).
- Turin water: wM-Bus SND_NR, OMS security mode 5 (AES-128-CBC) with the meter's key, format A CRCs.
- Turin ST-I: DLMS DATA-NOTIFICATION with a self-describing push list (OBIS, value, scaler/unit),
  general-glo-ciphered (suite 0, AES-GCM, encryption + authentication) with the meter's GUEK/GAK.
- Concentrator, Connode, Midori and ENNOVA documents: JSON in the formats of docs/mbus-agent.md,
  docs/connode.md, docs/midori.schema.json and the ENNOVA route.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flexmeter.iot_agents.dlms import axdr
from flexmeter.iot_agents.dlms.apdu import build_data_notification
from flexmeter.iot_agents.dlms.cosem_time import CosemDateTime
from flexmeter.iot_agents.dlms.security import build_general_glo_ciphering
from flexmeter.iot_agents.mbus.encode import build_rsp_ud, build_wmbus, encode_record, vif_for
from flexmeter.iot_agents.mbus.uplink import UplinkFrame, build_json_uplink

if TYPE_CHECKING:
    from flexmeter.simulator.fleet import SimMeter

Json = dict[str, Any]

HEAT_MEDIUM, WATER_MEDIUM = 0x04, 0x07
HEAT_VERSION, WATER_VERSION = 0x1B, 0x21

_INT32, _INT16 = 0x04, 0x02
_VIF_ENERGY_WH = vif_for("energy", "Wh", 0)
_VIF_VOLUME_L = vif_for("volume", "m³", -3)
_VIF_POWER_W = vif_for("power", "W", 0)
_VIF_FLOW_LPH = vif_for("volume_flow", "m³/h", -3)
_VIF_TF = vif_for("flow_temperature", "°C", -2)
_VIF_TR = vif_for("return_temperature", "°C", -2)
_VIF_DT = vif_for("temperature_difference", "K", -2)

# COSEM units (Blue Book): W 27, var 29, Wh 30, A 33, V 35, Hz 44
_W, _VAR, _WH, _A, _V, _HZ = 27, 29, 30, 33, 35, 44
DLMS_EPOCH = 1_577_836_800
"""2020-01-01T00:00:00Z: invocation counters are seconds since then, so they rise with time across restarts."""


def iso(epoch: int | float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def number(value: int | Decimal, places: int = 0) -> int | float:
    """An exact JSON number: ``value`` x 10^-places as the float whose repr is that decimal."""
    if places == 0:
        return int(value)
    scaled = Decimal(value).scaleb(-places)
    return int(scaled) if scaled == scaled.to_integral_value() else float(str(scaled))


# -- M-Bus -------------------------------------------------------------------------------------------------
def mbus_identity(meter: SimMeter) -> tuple[str, str, int, int]:
    """(ID, manufacturer, version, medium) of an M-Bus meter, with the simulator's defaults."""
    heat = meter.role == "heat_mbus"
    assert meter.serial is not None
    return (meter.serial, meter.manufacturer or ("KAM" if heat else "DME"),
            meter.mbus_version if meter.mbus_version is not None else (HEAT_VERSION if heat else WATER_VERSION),
            meter.mbus_medium if meter.mbus_medium is not None else (HEAT_MEDIUM if heat else WATER_MEDIUM))


def heat_rsp_ud(meter: SimMeter, *, primary: int, access: int, energy_wh: int, volume_l: int,
                power_w: int, flow_lph: int, forward_c: int, return_c: int) -> bytes:
    records = b"".join((
        encode_record(_VIF_ENERGY_WH, energy_wh, data_field=_INT32),
        encode_record(_VIF_VOLUME_L, volume_l, data_field=_INT32),
        encode_record(_VIF_POWER_W, power_w, data_field=_INT32),
        encode_record(_VIF_FLOW_LPH, flow_lph, data_field=_INT32),
        encode_record(_VIF_TF, forward_c, data_field=_INT16),
        encode_record(_VIF_TR, return_c, data_field=_INT16),
        encode_record(_VIF_DT, forward_c - return_c, data_field=_INT16),
    ))
    serial, manufacturer, version, medium = mbus_identity(meter)
    return build_rsp_ud(address=primary & 0xFF, meter_id=serial, manufacturer=manufacturer, version=version,
                        medium=medium, access_number=access & 0xFF, status=0, records=records)


def water_wmbus(meter: SimMeter, *, access: int, volume_l: int, flow_lph: int, key: bytes) -> bytes:
    records = (encode_record(_VIF_VOLUME_L, volume_l, data_field=_INT32)
               + encode_record(_VIF_FLOW_LPH, flow_lph, data_field=_INT32))
    serial, manufacturer, version, medium = mbus_identity(meter)
    return build_wmbus(meter_id=serial, manufacturer=manufacturer, version=version, medium=medium,
                       access_number=access & 0xFF, status=0, records=records, key=key)


def concentrator_uplink(concentrator: str, frames: list[tuple[str, bytes, int]]) -> bytes:
    """The IREN concentrator's JSON uplink: (kind, frame, received epoch) per frame."""
    return build_json_uplink([UplinkFrame(kind, data, datetime.fromtimestamp(at, UTC))  # type: ignore[arg-type]
                              for kind, data, at in frames], concentrator)


# -- DLMS --------------------------------------------------------------------------------------------------
def _obis(text: str) -> bytes:
    head, _, tail = text.partition(":")
    a, b = head.split("-")
    return bytes([int(a), int(b), *(int(x) for x in tail.split("."))])


_OBIS_CACHE: dict[str, bytes] = {}


def _entry(obis: str, tag: int, value: int, scaler: int, unit: int) -> axdr.Data:
    raw = _OBIS_CACHE.get(obis)
    if raw is None:
        raw = _OBIS_CACHE[obis] = _obis(obis)
    return (axdr.STRUCTURE, [(axdr.OCTET_STRING, raw), (tag, value),
                             (axdr.STRUCTURE, [(axdr.INTEGER, scaler), (axdr.ENUM, unit)])])


def dlms_values(values: list[tuple[str, int, int, int]]) -> axdr.Data:
    """A self-describing push list: (OBIS, raw integer, scaler, COSEM unit) per element."""
    out = []
    for obis, raw, scaler, unit in values:
        tag = axdr.DOUBLE_LONG_UNSIGNED if raw >= 0 else axdr.DOUBLE_LONG
        if unit in (_V, _A, _HZ):
            tag = axdr.LONG_UNSIGNED if 0 <= raw < 65536 else tag
        out.append(_entry(obis, tag, raw, scaler, unit))
    return (axdr.ARRAY, out)


def dlms_push(*, system_title: bytes, guek: bytes, gak: bytes, epoch: int, body: axdr.Data,
              invoke_id: int) -> bytes:
    """A general-glo-ciphered DATA-NOTIFICATION (encrypted and authenticated) with the meter's clock."""
    stamp = CosemDateTime.from_datetime(datetime.fromtimestamp(epoch, UTC))
    apdu = build_data_notification(body, invoke_id=invoke_id & 0xFFFFFF, date_time=stamp)
    return build_general_glo_ciphering(apdu, system_title, invocation_counter(epoch), guek, gak)


def invocation_counter(epoch: int) -> int:
    return max(1, epoch - DLMS_EPOCH)


def single_phase_values(import_wh: int, export_wh: int, power_w: int,
                        voltage_dv: int) -> list[tuple[str, int, int, int]]:
    current_ca = (power_w * 1000 // voltage_dv) if voltage_dv else 0  # 0.01 A
    return [("1-0:1.8.0.255", import_wh, 0, _WH), ("1-0:2.8.0.255", export_wh, 0, _WH),
            ("1-0:1.7.0.255", power_w, 0, _W), ("1-0:2.7.0.255", 0, 0, _W),
            ("1-0:32.7.0.255", voltage_dv, -1, _V), ("1-0:31.7.0.255", current_ca, -2, _A),
            ("1-0:14.7.0.255", 5000, -2, _HZ)]


def substation_values(import_wh: int, export_wh: int, phase_import_wh: list[int], phase_w: list[int],
                      voltages_dv: list[int], frequency_chz: int) -> list[tuple[str, int, int, int]]:
    values = [("1-0:1.8.0.255", import_wh, 0, _WH), ("1-0:2.8.0.255", export_wh, 0, _WH),
              ("1-0:1.7.0.255", max(0, sum(phase_w)), 0, _W), ("1-0:2.7.0.255", max(0, -sum(phase_w)), 0, _W)]
    for i, (c_power, c_volt, c_curr, c_energy) in enumerate(((21, 32, 31, 21), (41, 52, 51, 41),
                                                             (61, 72, 71, 61))):
        power, volt = phase_w[i], voltages_dv[i]
        values += [(f"1-0:{c_energy}.8.0.255", phase_import_wh[i], 0, _WH),
                   (f"1-0:{c_power}.7.0.255", max(0, power), 0, _W),
                   (f"1-0:{c_volt}.7.0.255", volt, -1, _V),
                   (f"1-0:{c_curr}.7.0.255", abs(power) * 1000 // volt if volt else 0, -2, _A)]
    values.append(("1-0:14.7.0.255", frequency_chz, -2, _HZ))
    return values


# -- JSON documents ----------------------------------------------------------------------------------------
def dumps(document: Json) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def connode_document(gateway: str, seq: int, sent: int, messages: list[Json]) -> bytes:
    return dumps({"gateway": gateway, "seq": seq, "sent": iso(sent), "messages": messages})


def midori_message(sensor: str, apikey: str, seq: int, samples: list[Json]) -> bytes:
    return dumps({"sensor": sensor, "apikey": apikey, "seq": seq, "samples": samples})


def ennova_batch(hub: str, devices: dict[str, list[Json]]) -> bytes:
    return dumps({"hub": hub, "devices": [{"id": k, "samples": v} for k, v in devices.items()]})
