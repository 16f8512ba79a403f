"""Default mapping tables of the DLMS / IEC 62056-21 agent: OBIS quantity -> NGSI attribute, per meter model.

Data, in iotagent attribute syntax; provisioning overrides any entry (same ``object_id``). Object ids are the
short OBIS ``C.D.E`` of the quantity (``1.8.0``, ``32.7.0``), the keys the Connode tables use too; the
decoder has already converted every value to the unit named here (kWh, kvarh, kVAh, W, var, VA, V, A, Hz),
so the attribute names and unitCodes are the ones of ``flexmeter.ngsi_models`` (docs/data-models.md).
Derived keys: ``16.7.0`` (net active power, OBIS's own code for 1.7.0 - 2.7.0) and ``3-4.7.0`` (net
reactive power, 3.7.0 - 4.7.0), computed by the decoder when the meter does not send them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

Json = dict[str, Any]

SINGLE_PHASE = "SINGLE_PHASE"
"""A single-phase user meter (Turin ST-I users): ACMeasurement, phaseType singlePhase, per-phase key ``L``."""
THREE_PHASE = "THREE_PHASE"
"""A 3-phase user meter (households, PV): ACMeasurement, phaseType threePhase, keys L1/L2/L3."""
SUBSTATION = "SUBSTATION"
"""A 3-phase MV/LV substation meter: ThreePhaseAcMeasurement."""

MODELS = (SINGLE_PHASE, THREE_PHASE, SUBSTATION)

_K = Decimal(1000)
UNIT_CODES: dict[str, tuple[str, Decimal]] = {
    # meter unit (lower case) -> (the canonical UN/CEFACT code, the factor from the meter's unit to it)
    "wh": ("KWH", 1 / _K), "kwh": ("KWH", Decimal(1)), "mwh": ("KWH", _K),
    "varh": ("K3", 1 / _K), "kvarh": ("K3", Decimal(1)),
    "vah": ("C79", 1 / _K), "kvah": ("C79", Decimal(1)),
    "w": ("WTT", Decimal(1)), "kw": ("WTT", _K), "mw": ("WTT", _K * _K),
    "var": ("D44", Decimal(1)), "kvar": ("D44", _K),
    "va": ("D46", Decimal(1)), "kva": ("D46", _K),
    "v": ("VLT", Decimal(1)), "kv": ("VLT", _K),
    "a": ("AMP", Decimal(1)),
    "hz": ("HTZ", Decimal(1)),
}
"""How the decoder normalises a value: ``kW`` becomes W (WTT), ``Wh`` kWh (KWH)... IEC 62056-21 readouts
write units in any case (``kWh``, ``KWH``, ``kvarh``, ``kVArh``): they are compared in lower case."""

MEASURE_CODES: dict[str, str] = {
    "wh": "WHR", "kwh": "KWH", "mwh": "MWH", "kvarh": "K3", "kvah": "C79", "w": "WTT", "kw": "KWT",
    "mw": "MAW", "var": "D44", "kvar": "KVR", "va": "D46", "kva": "KVA", "v": "VLT", "kv": "KVT",
    "a": "AMP", "hz": "HTZ", "m3": "MTQ", "m³": "MTQ", "°c": "CEL", "gj": "GV", "%": "P1",
}
"""A meter unit as its UN/CEFACT code, without conversion (what the Connode tables expect: kW as KWT)."""


def _unit(code: str) -> Json:
    return {"unitCode": {"type": "Text", "value": code}}


def _attr(object_id: str, name: str, unit: str | None = None, component: str | None = None) -> Json:
    entry: Json = {"object_id": object_id, "name": name, "type": "StructuredValue" if component else "Number"}
    if unit:
        entry["metadata"] = _unit(unit)
    if component:
        entry["component"] = component
    return entry


def _per_phase(starts: tuple[int, int, int], d_e: str, name: str, unit: str | None) -> list[Json]:
    return [_attr(f"{c}.{d_e}", name, unit, f"L{i}") for i, c in enumerate(starts, start=1)]


TOTALS: list[Json] = [
    _attr("1.8.0", "totalActiveEnergyImport", "KWH"),
    _attr("2.8.0", "totalActiveEnergyExport", "KWH"),
    _attr("3.8.0", "totalReactiveEnergyImport", "K3"),
    _attr("4.8.0", "totalReactiveEnergyExport", "K3"),
    _attr("1.8.1", "activeEnergyImportTariff1", "KWH"),
    _attr("1.8.2", "activeEnergyImportTariff2", "KWH"),
    _attr("2.8.1", "activeEnergyExportTariff1", "KWH"),
    _attr("2.8.2", "activeEnergyExportTariff2", "KWH"),
    _attr("9.8.0", "totalApparentEnergyImport", "C79"),
    _attr("10.8.0", "totalApparentEnergyExport", "C79"),
    _attr("16.7.0", "totalActivePower", "WTT"),
    _attr("1.7.0", "totalActivePowerImport", "WTT"),
    _attr("2.7.0", "totalActivePowerExport", "WTT"),
    _attr("3-4.7.0", "totalReactivePower", "D44"),
    _attr("9.7.0", "totalApparentPower", "D46"),
    _attr("13.7.0", "totalPowerFactor", "C62"),
    _attr("14.7.0", "frequency", "HTZ"),
]

THREE_PHASES: list[Json] = [
    *_per_phase((21, 41, 61), "8.0", "activeEnergyImport", "KWH"),
    *_per_phase((22, 42, 62), "8.0", "activeEnergyExport", "KWH"),
    *_per_phase((23, 43, 63), "8.0", "reactiveEnergyImport", "K3"),
    *_per_phase((24, 44, 64), "8.0", "reactiveEnergyExport", "K3"),
    *_per_phase((21, 41, 61), "7.0", "activePower", "WTT"),
    *_per_phase((23, 43, 63), "7.0", "reactivePower", "D44"),
    *_per_phase((29, 49, 69), "7.0", "apparentPower", "D46"),
    *_per_phase((33, 53, 73), "7.0", "powerFactor", "C62"),
    *_per_phase((31, 51, 71), "7.0", "current", "AMP"),
    _attr("91.7.0", "current", "AMP", "N"),
    *_per_phase((32, 52, 72), "7.0", "phaseVoltage", "VLT"),
]

SINGLE_PHASE_TABLE: list[Json] = [
    *TOTALS,
    # A single-phase meter reports its phase as L1 (32.7.0) or as "any phase" (12.7.0, 11.7.0).
    _attr("32.7.0", "phaseVoltage", "VLT", "L"),
    _attr("12.7.0", "phaseVoltage", "VLT", "L"),
    _attr("31.7.0", "current", "AMP", "L"),
    _attr("11.7.0", "current", "AMP", "L"),
    _attr("91.7.0", "current", "AMP", "N"),
    _attr("33.7.0", "powerFactor", "C62", "L"),
    {"name": "phaseType", "type": "Text", "expression": "'singlePhase'"},
]

THREE_PHASE_TABLE: list[Json] = [
    *TOTALS,
    *THREE_PHASES,
    {"name": "phaseType", "type": "Text", "expression": "'threePhase'"},
]

SUBSTATION_TABLE: list[Json] = [
    *TOTALS,
    _attr("16.8.0", "totalActiveEnergyNet", "KWH"),
    _attr("15.8.0", "totalActiveEnergyAbsolute", "KWH"),
    *THREE_PHASES,
]

TABLES: dict[str, list[Json]] = {SINGLE_PHASE: SINGLE_PHASE_TABLE, THREE_PHASE: THREE_PHASE_TABLE,
                                 SUBSTATION: SUBSTATION_TABLE}
ENTITY_TYPES: dict[str, str] = {SINGLE_PHASE: "ACMeasurement", THREE_PHASE: "ACMeasurement",
                                SUBSTATION: "ThreePhaseAcMeasurement"}

L2_L3_QUANTITIES = frozenset({"41.7.0", "61.7.0", "51.7.0", "71.7.0", "52.7.0", "72.7.0", "42.7.0", "62.7.0",
                              "43.7.0", "63.7.0", "53.7.0", "73.7.0", "41.8.0", "61.8.0"})
"""Keys that only a 3-phase meter sends: with any of them the default model is SUBSTATION (in Turin the
3-phase DLMS meters are the substations'); provision ``model: THREE_PHASE`` for a 3-phase customer."""

KNOWN_KEYS: frozenset[str] = frozenset(str(a["object_id"]) for table in TABLES.values() for a in table
                                       if a.get("object_id"))
"""The quantities the decoder forwards; anything else a meter pushes (identifiers, status words, the raw
3.7.0/4.7.0 behind the net reactive power) is used for identification or derivation only."""
