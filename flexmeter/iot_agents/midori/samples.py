"""The 1 Hz electrical samples Midori sensors and ENNOVA hub devices send, and their ACMeasurement mapping.

Both formats carry, per sample, its own time and some of: voltage (V), current (A), active power (W),
reactive power (var), power factor, frequency (Hz) and the import/export energy registers (kWh). Every
sample is one reading with its own ``TimeInstant``: 1 Hz data stays 1 Hz. Schemas: docs/midori.schema.json,
docs/ennova.schema.json.
"""

from __future__ import annotations

from typing import Any

from flexmeter.iot_agents.core.errors import DecodeError
from flexmeter.iot_agents.core.family import Reading

Json = dict[str, Any]

QUANTITIES: dict[str, tuple[str, str, str | None]] = {
    # sample key -> (attribute, unitCode, StructuredValue component)
    "voltage": ("phaseVoltage", "VLT", "L"),
    "current": ("current", "AMP", "L"),
    "activePower": ("totalActivePower", "WTT", None),
    "reactivePower": ("totalReactivePower", "D44", None),
    "apparentPower": ("totalApparentPower", "D46", None),
    "powerFactor": ("totalPowerFactor", "C62", None),
    "frequency": ("frequency", "HTZ", None),
    "activeEnergyImport": ("totalActiveEnergyImport", "KWH", None),
    "activeEnergyExport": ("totalActiveEnergyExport", "KWH", None),
}
TIME_KEYS = ("ts", "time", "TimeInstant")


def _entry(key: str, name: str, unit: str, component: str | None) -> Json:
    entry: Json = {"object_id": key, "name": name, "type": "StructuredValue" if component else "Number",
                   "metadata": {"unitCode": {"type": "Text", "value": unit}}}
    if component:
        entry["component"] = component
    return entry


AC_TABLE: list[Json] = [
    *(_entry(key, *spec) for key, spec in QUANTITIES.items()),
    {"name": "phaseType", "type": "Text", "expression": "'singlePhase'"},
]
"""Single-phase sensors -> ACMeasurement (docs/data-models.md): the per-phase quantities under ``L``."""


def sample_reading(device_id: str, sample: Any, where: str, *, apikey: str | None = None,
                   model: str | None = None) -> Reading:
    """One sample object -> one reading (exact: JSON numbers as parsed; booleans and text refused)."""
    if not isinstance(sample, dict):
        raise DecodeError(f"{where} is a {type(sample).__name__}, not an object")
    observed = next((sample[k] for k in TIME_KEYS if k in sample), None)
    if observed is None:
        raise DecodeError(f"{where}.ts (the sample's time) is missing: 1 Hz samples need their own time")
    if not isinstance(observed, str | int | float) or isinstance(observed, bool):
        raise DecodeError(f"{where}.ts must be an ISO 8601 string or epoch seconds/milliseconds")
    values: Json = {}
    for key, value in sample.items():
        if key in TIME_KEYS:
            continue
        if key not in QUANTITIES:
            raise DecodeError(f"{where}.{key} is not a known quantity ({', '.join(QUANTITIES)})")
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DecodeError(f"{where}.{key} must be a number, not {type(value).__name__}")
        values[key] = value
    if not values:
        raise DecodeError(f"{where} has no measured value")
    units = {key: QUANTITIES[key][1] for key in values}
    return Reading(device_id, values, observed_at=observed, units=units, model=model, apikey=apikey)


def device_name(value: Any, where: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise DecodeError(f"{where} (the device id) is missing or not a string")
    text = str(value).strip()
    if any(c in text for c in "&?/#<>\"'=;() ") or len(text) > 200:
        raise DecodeError(f"{where} {text[:40]!r}: a device id must not contain spaces or & ? / # < > \" ' = ; ( )")
    return text
