"""Default mapping tables of the Malmö Connode devices: data, in iotagent attribute syntax.

Provisioning overrides any entry: a group's or device's ``attributes`` entry with the same ``object_id``
wins, so a differently configured meter needs no release. ``component`` puts a per-phase measure into the
Smart Data Models' ``{"L1", "L2", "L3"}`` StructuredValue; entries with an ``expression`` and no
``object_id`` are computed from the mapped values (names, not OBIS codes, in expressions). Units are
UN/CEFACT codes. Attributes not in the Smart Data Models are flexmeter's own, listed in docs/connode.md.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def _unit(code: str) -> Json:
    return {"unitCode": {"type": "Text", "value": code}}


def _attr(object_id: str, name: str, unit: str | None = None, component: str | None = None,
          attr_type: str = "Number") -> Json:
    entry: Json = {"object_id": object_id, "name": name, "type": attr_type}
    if unit:
        entry["metadata"] = _unit(unit)
    if component:
        entry["component"] = component
        entry["type"] = "StructuredValue"
    return entry


def _phases(template: str, name: str, unit: str | None) -> list[Json]:
    """``21.7.0``-style OBIS keys per phase: template with ``{}`` for C (21/41/61, 32/52/72 ...)."""
    starts = {"active": (21, 41, 61), "voltage": (32, 52, 72), "current": (31, 51, 71), "pf": (33, 53, 73),
              "export": (22, 42, 62), "reactive": (23, 43, 63), "apparent": (29, 49, 69)}[template]
    return [_attr(f"{c}.7.0", name, unit, f"L{i}") for i, c in enumerate(starts, start=1)]


STATUS_FROM_MESSAGE = {
    "object_id": "messageType", "name": "status", "type": "Text",
    "expression": "messageType == 'lastGasp' ? 'powerOutage' : (messageType == 'reading' ? 'ok' : null)",
}

LAST_GASP_ALERT: list[Json] = [
    {"name": name, "type": attr_type, "expression": f"messageType == 'lastGasp' ? {value} : null",
     "entity_name": "'Alert:' + id + ':lastGasp'", "entity_type": "Alert"}
    for name, attr_type, value in (
        ("category", "Text", "'energy'"),
        ("subCategory", "Text", "'powerOutage'"),
        ("severity", "Text", "'high'"),
        ("description", "Text", "'Last gasp: meter ' + id + ' lost its supply'"),
        ("alertSource", "Text", "entity_name"),
        ("dateIssued", "DateTime", "TimeInstant"),
    )
]

EVENTS: list[Json] = [
    _attr("event.code", "lastEventCode"),
    _attr("event.text", "lastEventText", attr_type="Text"),
    _attr("alarm.code", "lastAlarmCode"),
    _attr("alarm.text", "lastAlarmText", attr_type="Text"),
    _attr("lastGasp.reason", "lastGaspReason", attr_type="Text"),
    _attr("breaker", "breakerState", attr_type="Text"),
]

E350: list[Json] = [
    _attr("1.8.0", "totalActiveEnergyImport", "KWH"),
    _attr("2.8.0", "totalActiveEnergyExport", "KWH"),
    _attr("1.8.1", "activeEnergyImportTariff1", "KWH"),
    _attr("1.8.2", "activeEnergyImportTariff2", "KWH"),
    _attr("2.8.1", "activeEnergyExportTariff1", "KWH"),
    _attr("2.8.2", "activeEnergyExportTariff2", "KWH"),
    _attr("3.8.0", "totalReactiveEnergyImport", "K3"),
    _attr("4.8.0", "totalReactiveEnergyExport", "K3"),
    _attr("1.7.0", "totalActivePower", "WTT"),
    _attr("2.7.0", "totalActivePowerExport", "WTT"),
    *_phases("active", "activePower", "WTT"),
    *_phases("export", "activePowerExport", "WTT"),
    *_phases("voltage", "phaseVoltage", "VLT"),
    *_phases("current", "current", "AMP"),
    *_phases("pf", "powerFactor", None),
    _attr("13.7.0", "totalPowerFactor"),
    _attr("14.7.0", "frequency", "HTZ"),
    STATUS_FROM_MESSAGE,
    *EVENTS,
    *LAST_GASP_ALERT,
    {"name": "phaseType", "type": "Text", "expression": "'threePhase'"},
]

ECHELON: list[Json] = [
    _attr("1.7.0", "totalActivePowerImport", "KWT"),
    _attr("2.7.0", "totalActivePowerExport", "KWT"),
    {"name": "totalActivePower", "type": "Number", "metadata": _unit("KWT"),
     "expression": "totalActivePowerImport - totalActivePowerExport"},
    {"name": "totalActivePowerSum", "type": "Number", "metadata": _unit("KWT"),
     "expression": "totalActivePowerImport + totalActivePowerExport"},
    _attr("1.8.0", "totalActiveEnergyImport", "KWH"),
    _attr("2.8.0", "totalActiveEnergyExport", "KWH"),
    {"name": "totalActiveEnergyNet", "type": "Number", "metadata": _unit("KWH"),
     "expression": "totalActiveEnergyImport - totalActiveEnergyExport"},
    {"name": "totalActiveEnergySum", "type": "Number", "metadata": _unit("KWH"),
     "expression": "totalActiveEnergyImport + totalActiveEnergyExport"},
    _attr("3.7.0", "totalReactivePowerImport", "KVR"),
    _attr("4.7.0", "totalReactivePowerExport", "KVR"),
    {"name": "totalReactivePower", "type": "Number", "metadata": _unit("KVR"),
     "expression": "totalReactivePowerImport - totalReactivePowerExport"},
    _attr("3.8.0", "totalReactiveEnergyImport", "K3"),
    _attr("4.8.0", "totalReactiveEnergyExport", "K3"),
    _attr("9.7.0", "totalApparentPower", "KVA"),
    *_phases("voltage", "phaseVoltage", "VLT"),
    *_phases("current", "current", "AMP"),
    *_phases("pf", "powerFactor", None),
    _attr("13.7.0", "totalPowerFactor"),
    _attr("14.7.0", "frequency", "HTZ"),
    *[_attr(f"81.7.{c}", "sinPhaseAngle", None, f"L{i}") for i, c in enumerate((40, 51, 62), start=1)],
    *[_attr(f"C.7.{i}", "powerOutageCount", None, f"L{i}") for i in (1, 2, 3)],
    *[_attr(f"pulse{i}", "pulseCount", None, f"P{i}") for i in (1, 2)],
    STATUS_FROM_MESSAGE,
    *EVENTS,
]

DH: list[Json] = [
    _attr("forwardTemp", "forwardTemperature", "CEL"),
    _attr("returnTemp", "returnTemperature", "CEL"),
    _attr("flow", "flowRate", "MQH"),
    _attr("volume", "volume", "LTR"),
    _attr("power", "instantPower", "KWT"),
    _attr("peakPower", "peakPower", "KWT"),
    _attr("energy", "totalConsumption", "MWH"),
    {"name": "meterType", "type": "Text", "expression": "'Heat'"},
    STATUS_FROM_MESSAGE,
    *EVENTS,
]

TABLES: dict[str, list[Json]] = {"E350": E350, "ECHELON": ECHELON, "DH": DH}
ENTITY_TYPES: dict[str, str] = {"E350": "ACMeasurement", "ECHELON": "ThreePhaseAcMeasurement",
                                "DH": "SmartMeteringObservation"}

DEFAULT_PROFILE: Json = {
    "messages": "messages",
    "device": "device",
    "model": "model",
    "time": "time",
    "kind": "type",
    "values": ["values"],
    "gateway": "gateway",
}
"""Where the decoder finds things in a gateway payload (dotted paths). A group's ``internal_attributes``
``{"connode_profile": {...}}`` overrides any key, for gateways that shape their JSON differently."""
