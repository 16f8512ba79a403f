"""Electricity: ThreePhaseAcMeasurement (substations, 3-phase meters) and ACMeasurement (households, PV).

Both Smart Data Models use the same attribute names; per-phase quantities are StructuredValues keyed
``L1``/``L2``/``L3`` (``N`` for the neutral current, ``L12``/``L23``/``L31`` line to line). A single-phase
ACMeasurement uses the key ``L``, as the model's specification says. Energies are in kWh, powers in W,
var and VA, as the models document; OBIS codes in the quantity column are the IEC 62056 registers
meters send. Where a meter gives something the models lack (the Echelon substation meter's net and
absolute energy, per-phase outage flags, sine of the phase angle, pulse counts), the row is marked as
a project extension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from flexmeter.ngsi_models.table import (
    LINE_TO_LINE,
    THREE_PHASES,
    THREE_PHASES_N,
    EntityTable,
    GeoPoint,
    Json,
    Kind,
    Number,
    Row,
    assemble,
    builder_values,
)

Phases = Mapping[str, Number]
PhaseFlags = Mapping[str, bool]
PhaseType = Literal["singlePhase", "threePhase"]

ZERO, ONE, MINUS_ONE = Decimal(0), Decimal(1), Decimal(-1)


def common_rows() -> tuple[Row, ...]:
    """Descriptive attributes every measurement entity may carry (GSMA and Location commons)."""
    return (
        Row("name", Kind.TEXT, "meter or measurement point name"),
        Row("description", Kind.TEXT, "free text"),
        Row("location", Kind.GEO, "installation position (GeoJSON, longitude first)"),
    )


def _electric_rows(*, ac_measurement: bool) -> tuple[Row, ...]:
    # ACMeasurement's schema gives per-phase active power a minimum of 0; ThreePhaseAcMeasurement does not.
    phase_power_min = ZERO if ac_measurement else None
    return (
        Row("refDevice", Kind.REF_LIST, "Device entity (or entities) that measured"),
        Row("refTargetDevice", Kind.REF_LIST, "what was measured (transformer, feeder, building)"),
        Row("dateEnergyMeteringStarted", Kind.DATETIME, "start of the energy registers"),
        Row("totalActiveEnergyImport", Kind.NUMBER, "active energy import +A (OBIS 1.8.0)", "KWH", ZERO),
        Row("totalActiveEnergyExport", Kind.NUMBER, "active energy export -A (OBIS 2.8.0)", "KWH", ZERO),
        Row("totalReactiveEnergyImport", Kind.NUMBER, "reactive energy import +R (OBIS 3.8.0)", "K3", ZERO),
        Row("totalReactiveEnergyExport", Kind.NUMBER, "reactive energy export -R (OBIS 4.8.0)", "K3", ZERO),
        Row("totalApparentEnergyImport", Kind.NUMBER, "apparent energy import (OBIS 9.8.0)", "C79", ZERO),
        Row("totalApparentEnergyExport", Kind.NUMBER, "apparent energy export (OBIS 10.8.0)", "C79", ZERO),
        Row(
            "activeEnergyImport",
            Kind.PHASES,
            "active energy import per phase (OBIS 21/41/61.8.0)",
            "KWH",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "activeEnergyExport",
            Kind.PHASES,
            "active energy export per phase (OBIS 22/42/62.8.0)",
            "KWH",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "reactiveEnergyImport",
            Kind.PHASES,
            "reactive energy import per phase (OBIS 23/43/63.8.0)",
            "K3",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "reactiveEnergyExport",
            Kind.PHASES,
            "reactive energy export per phase (OBIS 24/44/64.8.0)",
            "K3",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "apparentEnergyImport",
            Kind.PHASES,
            "apparent energy import per phase (OBIS 29/49/69.8.0)",
            "C79",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "apparentEnergyExport",
            Kind.PHASES,
            "apparent energy export per phase (OBIS 30/50/70.8.0)",
            "C79",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row(
            "totalActivePower",
            Kind.NUMBER,
            "active power, import positive (OBIS 16.7.0 = 1.7.0 - 2.7.0)",
            "WTT",
        ),
        Row("totalReactivePower", Kind.NUMBER, "reactive power (OBIS 3.7.0 - 4.7.0)", "D44"),
        Row("totalApparentPower", Kind.NUMBER, "apparent power (OBIS 9.7.0)", "D46", ZERO),
        Row(
            "activePower",
            Kind.PHASES,
            "active power per phase (OBIS 21/41/61.7.0)",
            "WTT",
            phase_power_min,
            keys=THREE_PHASES,
        ),
        Row(
            "reactivePower",
            Kind.PHASES,
            "reactive power per phase (OBIS 23/43/63.7.0)",
            "D44",
            keys=THREE_PHASES,
        ),
        Row(
            "apparentPower",
            Kind.PHASES,
            "apparent power per phase (OBIS 29/49/69.7.0)",
            "D46",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row("totalPowerFactor", Kind.NUMBER, "power factor, all phases (OBIS 13.7.0)", "C62", MINUS_ONE, ONE),
        Row(
            "powerFactor",
            Kind.PHASES,
            "power factor per phase (OBIS 33/53/73.7.0)",
            "C62",
            MINUS_ONE,
            ONE,
            keys=THREE_PHASES,
        ),
        Row(
            "totalDisplacementPowerFactor",
            Kind.NUMBER,
            "displacement power factor (fundamental), all phases",
            "C62",
            MINUS_ONE,
            ONE,
        ),
        Row(
            "displacementPowerFactor",
            Kind.PHASES,
            "displacement power factor per phase",
            "C62",
            MINUS_ONE,
            ONE,
            keys=THREE_PHASES,
        ),
        Row("frequency", Kind.NUMBER, "supply frequency (OBIS 14.7.0)", "HTZ", ZERO),
        Row(
            "current",
            Kind.PHASES,
            "RMS current per phase and neutral (OBIS 31/51/71/91.7.0)",
            "AMP",
            keys=THREE_PHASES_N,
        ),
        Row(
            "phaseVoltage",
            Kind.PHASES,
            "RMS voltage phase to neutral (OBIS 32/52/72.7.0)",
            "VLT",
            ZERO,
            keys=THREE_PHASES,
        ),
        Row("phaseToPhaseVoltage", Kind.PHASES, "RMS voltage line to line", "VLT", ZERO, keys=LINE_TO_LINE),
        Row(
            "thdVoltage",
            Kind.PHASES,
            "total harmonic distortion of voltage (0..1)",
            "C62",
            ZERO,
            ONE,
            keys=THREE_PHASES,
        ),
        Row(
            "thdCurrent",
            Kind.PHASES,
            "total harmonic distortion of current (0..1)",
            "C62",
            ZERO,
            ONE,
            keys=THREE_PHASES,
        ),
    )


_SUBSTATION_EXTENSIONS = (
    Row(
        "totalActivePowerImport",
        Kind.NUMBER,
        "active power forward (OBIS 1.7.0)",
        "WTT",
        ZERO,
        extension=True,
    ),
    Row(
        "totalActivePowerExport",
        Kind.NUMBER,
        "active power reverse (OBIS 2.7.0)",
        "WTT",
        ZERO,
        extension=True,
    ),
    Row(
        "totalActiveEnergyNet",
        Kind.NUMBER,
        "active energy import minus export (OBIS 16.8.0)",
        "KWH",
        extension=True,
    ),
    Row(
        "totalActiveEnergyAbsolute",
        Kind.NUMBER,
        "active energy import plus export (OBIS 15.8.0)",
        "KWH",
        ZERO,
        extension=True,
    ),
    Row(
        "sinPhaseAngle",
        Kind.PHASES,
        "sine of the voltage-current phase angle per phase",
        "C62",
        MINUS_ONE,
        ONE,
        keys=THREE_PHASES,
        extension=True,
    ),
    Row(
        "powerOutage",
        Kind.PHASE_FLAGS,
        "power outage per phase (true = no voltage)",
        keys=THREE_PHASES,
        extension=True,
    ),
    Row("pulseCount", Kind.INTEGER, "pulse input counter", minimum=ZERO, extension=True),
)

THREE_PHASE_AC_MEASUREMENT = EntityTable(
    entity_type="ThreePhaseAcMeasurement",
    summary="3-phase meters: MV/LV substations (Turin DLMS, Malmö Echelon, IEC 62056-21), 3-phase customers.",
    rows=(*common_rows(), *_electric_rows(ac_measurement=False), *_SUBSTATION_EXTENSIONS),
    sdm_model="ThreePhaseAcMeasurement",
    timestamp_metadata=True,
    notes=(
        "The model has no `dateObserved`: each measured attribute carries `timestamp` metadata (as in the "
        "model's example) and the entity a `TimeInstant` attribute, both the meter's observation time.",
        "Per-phase active power may be negative (export) here, unlike in ACMeasurement.",
    ),
)

AC_MEASUREMENT = EntityTable(
    entity_type="ACMeasurement",
    summary="Households, buildings, PV (E350 every 10 s, Midori and ST-I users at 1 Hz), 1 or 3 phases.",
    rows=(
        *common_rows()[:2],
        Row("location", Kind.GEO, "installation position (GeoJSON, longitude first)", required=True),
        Row("dateObserved", Kind.DATETIME, "the meter's observation time", param="observed_at", required=True),
        Row("dateObservedFrom", Kind.DATETIME, "start of the averaging interval, if the values are averages"),
        Row("dateObservedTo", Kind.DATETIME, "end of the averaging interval"),
        Row("phaseType", Kind.ENUM, "installation", enum=("singlePhase", "threePhase"), required=True),
        *_electric_rows(ac_measurement=True),
    ),
    sdm_model="ACMeasurement",
    notes=(
        "Single-phase meters use the sub-property `L` (and `N` for the neutral current); line-to-line "
        "voltage "
        "is not defined for them.",
        "Per-phase `activePower` has a minimum of 0 in this model: PV export goes into `totalActivePower` "
        "(signed) and the export registers.",
    ),
)


def three_phase_ac_measurement(
    meter_id: str,
    *,
    observed_at: datetime,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
    ref_device: Sequence[str] | None = None,
    ref_target_device: Sequence[str] | None = None,
    date_energy_metering_started: datetime | None = None,
    total_active_energy_import: Number | None = None,
    total_active_energy_export: Number | None = None,
    total_reactive_energy_import: Number | None = None,
    total_reactive_energy_export: Number | None = None,
    total_apparent_energy_import: Number | None = None,
    total_apparent_energy_export: Number | None = None,
    active_energy_import: Phases | None = None,
    active_energy_export: Phases | None = None,
    reactive_energy_import: Phases | None = None,
    reactive_energy_export: Phases | None = None,
    apparent_energy_import: Phases | None = None,
    apparent_energy_export: Phases | None = None,
    total_active_power: Number | None = None,
    total_reactive_power: Number | None = None,
    total_apparent_power: Number | None = None,
    active_power: Phases | None = None,
    reactive_power: Phases | None = None,
    apparent_power: Phases | None = None,
    total_power_factor: Number | None = None,
    power_factor: Phases | None = None,
    total_displacement_power_factor: Number | None = None,
    displacement_power_factor: Phases | None = None,
    frequency: Number | None = None,
    current: Phases | None = None,
    phase_voltage: Phases | None = None,
    phase_to_phase_voltage: Phases | None = None,
    thd_voltage: Phases | None = None,
    thd_current: Phases | None = None,
    total_active_power_import: Number | None = None,
    total_active_power_export: Number | None = None,
    total_active_energy_net: Number | None = None,
    total_active_energy_absolute: Number | None = None,
    sin_phase_angle: Phases | None = None,
    power_outage: PhaseFlags | None = None,
    pulse_count: int | None = None,
) -> Json:
    """A 3-phase meter reading as a normalized ``ThreePhaseAcMeasurement``.

    Id ``urn:ngsi-ld:ThreePhaseAcMeasurement:<meter_id>``."""
    values = builder_values(locals(), "meter_id", "observed_at")
    return assemble(THREE_PHASE_AC_MEASUREMENT, meter_id, values, observed_at=observed_at)


def ac_measurement(
    meter_id: str,
    *,
    observed_at: datetime,
    location: GeoPoint | Mapping[str, Any],
    phase_type: PhaseType,
    name: str | None = None,
    description: str | None = None,
    date_observed_from: datetime | None = None,
    date_observed_to: datetime | None = None,
    ref_device: Sequence[str] | None = None,
    ref_target_device: Sequence[str] | None = None,
    date_energy_metering_started: datetime | None = None,
    total_active_energy_import: Number | None = None,
    total_active_energy_export: Number | None = None,
    total_reactive_energy_import: Number | None = None,
    total_reactive_energy_export: Number | None = None,
    total_apparent_energy_import: Number | None = None,
    total_apparent_energy_export: Number | None = None,
    active_energy_import: Phases | None = None,
    active_energy_export: Phases | None = None,
    reactive_energy_import: Phases | None = None,
    reactive_energy_export: Phases | None = None,
    apparent_energy_import: Phases | None = None,
    apparent_energy_export: Phases | None = None,
    total_active_power: Number | None = None,
    total_reactive_power: Number | None = None,
    total_apparent_power: Number | None = None,
    active_power: Phases | None = None,
    reactive_power: Phases | None = None,
    apparent_power: Phases | None = None,
    total_power_factor: Number | None = None,
    power_factor: Phases | None = None,
    total_displacement_power_factor: Number | None = None,
    displacement_power_factor: Phases | None = None,
    frequency: Number | None = None,
    current: Phases | None = None,
    phase_voltage: Phases | None = None,
    phase_to_phase_voltage: Phases | None = None,
    thd_voltage: Phases | None = None,
    thd_current: Phases | None = None,
) -> Json:
    """A 1- or 3-phase reading as a normalized ``ACMeasurement`` (``urn:ngsi-ld:ACMeasurement:<id>``)."""
    values = builder_values(locals(), "meter_id")
    return assemble(AC_MEASUREMENT, meter_id, values, observed_at=observed_at, single_phase=phase_type == "singlePhase")
