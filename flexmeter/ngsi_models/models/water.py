"""Water: WaterConsumptionObserved (Turin wM-Bus water meters).

The model's ``waterConsumption`` is an integer documented in cubic metres, which would throw away the
litres a water meter counts; flexmeter writes the register in **litres** and says so in ``unitCode``
(LTR). Convert with :func:`flexmeter.ngsi_models.units.convert` (m³ → LTR is exact). ``minFlow`` and
``maxFlow`` are integers in l/h as the model documents. Alarm flags accept booleans and are written as
the model's 0/1 integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

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

FLOW_PERSISTENCE = (
    "Nothing to report",
    "No persistence",
    "In progress impacting persistence",
    "In progress persistence",
    "Past Persistence during the period",
)

WATER_CONSUMPTION_OBSERVED = EntityTable(
    entity_type="WaterConsumptionObserved",
    summary="Smart water meters (wireless M-Bus, OMS): cumulative volume, flows and alarm flags.",
    rows=(
        *common_rows(),
        Row("refDevice", Kind.REF, "Device entity of the meter", extension=True),
        Row(
            "waterConsumption",
            Kind.INTEGER,
            "cumulative volume register (M-Bus VIF volume), in litres",
            "LTR",
            ZERO,
        ),
        Row("minFlow", Kind.INTEGER, "minimum flow over the last week", "E32", ZERO),
        Row("maxFlow", Kind.INTEGER, "maximum flow over the last week", "E32", ZERO),
        Row(
            "flow",
            Kind.NUMBER,
            "instantaneous volume flow (M-Bus VIF volume flow); negative = backflow",
            "MQH",
            extension=True,
        ),
        Row(
            "backflowVolume",
            Kind.INTEGER,
            "cumulative reverse volume register, in litres",
            "LTR",
            ZERO,
            extension=True,
        ),
        Row("alarmInProgress", Kind.FLAG, "any alarm active (status byte)"),
        Row("alarmTamper", Kind.FLAG, "tamper / magnetic manipulation"),
        Row("alarmStopsLeaks", Kind.FLAG, "leak alarm"),
        Row("alarmWaterQuality", Kind.FLAG, "water quality alarm"),
        Row("moduleTampered", Kind.FLAG, "radio module removed or tampered"),
        Row("acquisitionStageFailure", Kind.FLAG, "reading could not be acquired"),
        Row("alarmFlowPersistence", Kind.ENUM, "persistent flow alarm state", enum=FLOW_PERSISTENCE),
        Row("waterType", Kind.ENUM, "metered water", enum=("hotWater", "serviceWater")),
    ),
    sdm_model="WaterConsumptionObserved",
    notes=(
        "`waterConsumption` and `backflowVolume` are whole litres (unitCode LTR), not the model's documented "
        "m³, so that a register keeps its resolution; a fractional litre is refused rather than rounded.",
        "The model has no `dateObserved` and no device reference: the observation time is `TimeInstant`, and "
        "`refDevice` is a project extension.",
        "`persistenceFlowDuration` is left out: its enum values (`3h < 6h`, `> 180d`, ...) contain `<` "
        "and `>`, which Orion refuses in attribute values.",
    ),
)


def water_consumption_observed(
    meter_id: str,
    *,
    observed_at: datetime,
    name: str | None = None,
    description: str | None = None,
    location: GeoPoint | Mapping[str, Any] | None = None,
    ref_device: str | None = None,
    water_consumption: int | Decimal | None = None,
    min_flow: int | Decimal | None = None,
    max_flow: int | Decimal | None = None,
    flow: Number | None = None,
    backflow_volume: int | Decimal | None = None,
    alarm_in_progress: bool | None = None,
    alarm_tamper: bool | None = None,
    alarm_stops_leaks: bool | None = None,
    alarm_water_quality: bool | None = None,
    module_tampered: bool | None = None,
    acquisition_stage_failure: bool | None = None,
    alarm_flow_persistence: str | None = None,
    water_type: Literal["hotWater", "serviceWater"] | None = None,
) -> Json:
    """A water meter reading as a normalized ``WaterConsumptionObserved`` (volumes in litres)."""
    values = builder_values(locals(), "meter_id", "observed_at")
    return assemble(WATER_CONSUMPTION_OBSERVED, meter_id, values, observed_at=observed_at)
