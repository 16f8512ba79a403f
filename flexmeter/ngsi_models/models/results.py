"""The business service's results: EnergyBalance and ConsumptionProfile (project-own types).

Both describe a period (``dateObservedFrom``..``dateObservedTo``) and carry ``TimeInstant`` = the end of
the period, so QuantumLeap keeps one row per period. Estimated values are flagged (``estimated``), never
passed off as measured; ``completeness`` is the share (0..1) of the expected readings that arrived.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from flexmeter.ngsi_models.errors import InvalidValueError
from flexmeter.ngsi_models.table import EntityTable, Json, Kind, Number, Row, assemble, builder_values

ZERO, ONE = Decimal(0), Decimal(1)


def _period_rows() -> tuple[Row, ...]:
    return (
        Row("dateObservedFrom", Kind.DATETIME, "period start (inclusive)", param="period_start", required=True),
        Row("dateObservedTo", Kind.DATETIME, "period end (exclusive)", param="period_end", required=True),
    )


ENERGY_BALANCE = EntityTable(
    entity_type="EnergyBalance",
    summary="Energy delivered by a substation/feeder vs its customers' meters, every 15 minutes.",
    rows=(
        Row("refSubstation", Kind.REF, "substation balanced", required=True),
        Row("refFeeder", Kind.REF, "feeder balanced (absent: the whole substation)"),
        *_period_rows(),
        Row("energyDelivered", Kind.NUMBER, "active energy import at the substation/feeder meter", "KWH"),
        Row("energyConsumed", Kind.NUMBER, "sum of customers' active energy import", "KWH", ZERO),
        Row("energyProduced", Kind.NUMBER, "sum of customers' active energy export (PV)", "KWH", ZERO),
        Row("losses", Kind.NUMBER, "delivered + produced - consumed", "KWH"),
        Row("lossesPercent", Kind.NUMBER, "losses / (delivered + produced) x 100", "P1"),
        Row("completeness", Kind.NUMBER, "share of customer meters that reported (0..1)", "C62", ZERO, ONE),
        Row("metersExpected", Kind.INTEGER, "customer meters in the topology", minimum=ZERO),
        Row("metersReported", Kind.INTEGER, "customer meters with data for the period", minimum=ZERO),
        Row("estimated", Kind.BOOLEAN, "true when any term was estimated (gap filling)"),
    ),
    sdm_model=None,
)

VECTORS = ("electricity", "heat", "water", "gas")
RESOLUTIONS = ("PT15M", "PT1H", "P1D", "P1M")
#: The unit of ``consumption``/``production`` per commodity.
VECTOR_UNITS = {"electricity": "KWH", "heat": "KWH", "water": "MTQ", "gas": "MTQ"}

CONSUMPTION_PROFILE = EntityTable(
    entity_type="ConsumptionProfile",
    summary="Consumption per interval (15 min, hour, day, month) of a meter or building, from registers.",
    rows=(
        Row("refDevice", Kind.REF, "meter Device profiled"),
        Row("refBuilding", Kind.REF, "Building profiled (aggregate of its meters)"),
        Row("vector", Kind.ENUM, "commodity", enum=VECTORS, required=True),
        Row("resolution", Kind.ENUM, "interval length (ISO 8601 duration)", enum=RESOLUTIONS, required=True),
        *_period_rows(),
        Row(
            "consumption",
            Kind.NUMBER,
            "register increase over the period",
            None,
            ZERO,
            unit_note="KWH (electricity, heat) / MTQ (water, gas)",
        ),
        Row("production", Kind.NUMBER, "export register increase (PV) over the period", "KWH", ZERO),
        Row("estimated", Kind.BOOLEAN, "true when the value is an estimate (gap, reset, replacement)"),
        Row("completeness", Kind.NUMBER, "share of expected readings received (0..1)", "C62", ZERO, ONE),
    ),
    sdm_model=None,
)


def _check_period(period_start: datetime, period_end: datetime) -> None:
    if period_end <= period_start:
        raise InvalidValueError("the period must end after it starts")


def energy_balance(
    balance_id: str,
    *,
    ref_substation: str,
    period_start: datetime,
    period_end: datetime,
    ref_feeder: str | None = None,
    energy_delivered: Number | None = None,
    energy_consumed: Number | None = None,
    energy_produced: Number | None = None,
    losses: Number | None = None,
    losses_percent: Number | None = None,
    completeness: Number | None = None,
    meters_expected: int | None = None,
    meters_reported: int | None = None,
    estimated: bool | None = None,
) -> Json:
    """A normalized ``EnergyBalance`` (id ``urn:ngsi-ld:EnergyBalance:<balance_id>``)."""
    _check_period(period_start, period_end)
    values = builder_values(locals(), "balance_id")
    return assemble(ENERGY_BALANCE, balance_id, values, observed_at=period_end)


def consumption_profile(
    profile_id: str,
    *,
    vector: Literal["electricity", "heat", "water", "gas"],
    resolution: Literal["PT15M", "PT1H", "P1D", "P1M"],
    period_start: datetime,
    period_end: datetime,
    ref_device: str | None = None,
    ref_building: str | None = None,
    consumption: Number | None = None,
    production: Number | None = None,
    estimated: bool | None = None,
    completeness: Number | None = None,
) -> Json:
    """A normalized ``ConsumptionProfile`` (id ``urn:ngsi-ld:ConsumptionProfile:<profile_id>``)."""
    _check_period(period_start, period_end)
    if ref_device is None and ref_building is None:
        raise InvalidValueError("ConsumptionProfile: give refDevice or refBuilding")
    values = builder_values(locals(), "profile_id")
    unit = VECTOR_UNITS.get(vector, "KWH")
    return assemble(
        CONSUMPTION_PROFILE,
        profile_id,
        values,
        observed_at=period_end,
        units={"consumption": unit},
    )
