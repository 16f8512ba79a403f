"""District heating: SmartMeteringObservation with ``meterType`` "Heat" (Turin M-Bus, Malmö Connode).

No official heat-meter model exists. SmartMeteringObservation is the closest: its ``totalConsumption``
carries the heat energy register (kWh) and ``peakConsumption``/``offPeakConsumption`` the tariff
registers. The EN 1434 quantities a heat meter also gives are project extensions: forward and return
temperature, their difference, volume flow, volume, thermal power and peak power.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from flexmeter.ngsi_models.models.electricity import common_rows
from flexmeter.ngsi_models.table import (
    EntityTable,
    GeoPoint,
    Json,
    Kind,
    Number,
    Row,
    assemble,
    builder_values,
)

ZERO = Decimal(0)

HEAT_METER_OBSERVATION = EntityTable(
    entity_type="SmartMeteringObservation",
    summary="District-heating heat meters (EN 1434 over M-Bus, every 5 min in Turin, 10 s in Malmö).",
    rows=(
        *common_rows(),
        Row("meterType", Kind.ENUM, "commodity (always Heat here)", enum=("Heat",), required=True),
        Row("refDevice", Kind.REF, "Device entity of the meter"),
        Row(
            "totalConsumption",
            Kind.NUMBER,
            "heat energy register (M-Bus VIF energy; Connode total energy)",
            "KWH",
            ZERO,
        ),
        Row("peakConsumption", Kind.NUMBER, "heat energy, tariff 1 register", "KWH", ZERO),
        Row("offPeakConsumption", Kind.NUMBER, "heat energy, tariff 2 register", "KWH", ZERO),
        Row("forwardTemperature", Kind.NUMBER, "flow (supply) temperature", "CEL", extension=True),
        Row("returnTemperature", Kind.NUMBER, "return temperature", "CEL", extension=True),
        Row("temperatureDifference", Kind.NUMBER, "forward minus return temperature", "KEL", extension=True),
        Row("volumeFlow", Kind.NUMBER, "volume flow", "MQH", extension=True),
        Row("volume", Kind.NUMBER, "cumulative volume register", "MTQ", ZERO, extension=True),
        Row("thermalPower", Kind.NUMBER, "instantaneous thermal power", "KWT", extension=True),
        Row(
            "peakPower",
            Kind.NUMBER,
            "maximum thermal power of the period (M-Bus function max)",
            "KWT",
            extension=True,
        ),
    ),
    sdm_model="SmartMeteringObservation",
    notes=(
        "Energy is always kWh (unitCode KWH), whatever the meter sends (MWh, GJ, Wh): convert with "
        "`flexmeter.ngsi_models.units.convert`, so that the business service never mixes units.",
        "`meterType` is free text in the model; flexmeter writes exactly `Heat`.",
    ),
)


def heat_meter_observation(
    meter_id: str,
    *,
    observed_at: datetime,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
    ref_device: str | None = None,
    total_consumption: Number | None = None,
    peak_consumption: Number | None = None,
    off_peak_consumption: Number | None = None,
    forward_temperature: Number | None = None,
    return_temperature: Number | None = None,
    temperature_difference: Number | None = None,
    volume_flow: Number | None = None,
    volume: Number | None = None,
    thermal_power: Number | None = None,
    peak_power: Number | None = None,
) -> Json:
    """A heat-meter reading as a normalized ``SmartMeteringObservation`` with ``meterType`` "Heat".

    ``temperatureDifference`` is derived from exact (Decimal/int) forward and return temperatures when
    not given (never from floats, whose difference would carry binary noise)."""
    values = builder_values(locals(), "meter_id", "observed_at")
    values["meter_type"] = "Heat"
    exact = (Decimal, int)
    if (
        temperature_difference is None
        and isinstance(forward_temperature, exact)
        and isinstance(return_temperature, exact)
    ):
        values["temperature_difference"] = Decimal(forward_temperature) - Decimal(return_temperature)
    return assemble(HEAT_METER_OBSERVATION, meter_id, values, observed_at=observed_at)
