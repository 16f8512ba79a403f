"""Network topology: Building, Substation and Feeder, the project's own types (no usable official model).

dataModel.EnergyCIM's ``Substation`` is a stub (three numeric attributes, no licence, no example), and
there is no feeder model. The ``Building`` here keeps the attribute names of the Smart Data Models'
common schemas (``name``, ``address``, ``location``, ``category``) so that it stays close to
dataModel.Building, which is not among the schemas this project vendors. Relationships point upwards
(meter → building → feeder → substation), which is what the business service walks for its balances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

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


def _place_rows() -> tuple[Row, ...]:
    return (
        Row("name", Kind.TEXT, "inventory name"),
        Row("description", Kind.TEXT, "free text"),
        Row("address", Kind.OBJECT, "postal address (schema.org PostalAddress keys)"),
        Row("location", Kind.GEO, "position or outline (GeoJSON, longitude first)"),
    )


BUILDING = EntityTable(
    entity_type="Building",
    summary="A metered building (district-heating substation, apartment block, house).",
    rows=(
        *_place_rows(),
        Row("category", Kind.TEXT, "use, e.g. residential, office, school"),
        Row("refFeeder", Kind.REF, "LV feeder supplying the building"),
        Row("refSubstation", Kind.REF, "MV/LV substation supplying the building"),
        Row("contractedHeatPower", Kind.NUMBER, "contracted district-heating power", "KWT", ZERO),
        Row("customersCount", Kind.INTEGER, "supply points (customers) in the building", minimum=ZERO),
    ),
    sdm_model=None,
    time_instant=False,
)

SUBSTATION = EntityTable(
    entity_type="Substation",
    summary="An MV/LV secondary substation; its meters are ThreePhaseAcMeasurement entities.",
    rows=(
        *_place_rows(),
        Row("primaryVoltage", Kind.NUMBER, "rated MV side voltage", "KVT", ZERO),
        Row("secondaryVoltage", Kind.NUMBER, "rated LV side voltage", "VLT", ZERO),
        Row("ratedPower", Kind.NUMBER, "rated transformer power", "KVA", ZERO),
        Row("transformerCount", Kind.INTEGER, "number of transformers", minimum=ZERO),
        Row("refDevice", Kind.REF_LIST, "the substation's meter Device(s)"),
    ),
    sdm_model=None,
    time_instant=False,
)

FEEDER = EntityTable(
    entity_type="Feeder",
    summary="An LV feeder (line) leaving a substation; customers' meters refer to it.",
    rows=(
        *_place_rows(),
        Row("refSubstation", Kind.REF, "substation the feeder leaves from", required=True),
        Row("refDevice", Kind.REF_LIST, "the feeder's own meter Device(s), if any"),
        Row("ratedCurrent", Kind.NUMBER, "rated current", "AMP", ZERO),
    ),
    sdm_model=None,
    time_instant=False,
)

Place = GeoPoint | Mapping[str, Any]


def building(
    building_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    address: Mapping[str, Any] | None = None,
    location: Place | None = None,
    category: str | None = None,
    ref_feeder: str | None = None,
    ref_substation: str | None = None,
    contracted_heat_power: Number | None = None,
    customers_count: int | None = None,
) -> Json:
    """A normalized ``Building`` (id ``urn:ngsi-ld:Building:<building_id>``)."""
    return assemble(BUILDING, building_id, builder_values(locals(), "building_id"))


def substation(
    substation_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    address: Mapping[str, Any] | None = None,
    location: Place | None = None,
    primary_voltage: Number | None = None,
    secondary_voltage: Number | None = None,
    rated_power: Number | None = None,
    transformer_count: int | None = None,
    ref_device: Sequence[str] | None = None,
) -> Json:
    """A normalized ``Substation`` (id ``urn:ngsi-ld:Substation:<substation_id>``)."""
    return assemble(SUBSTATION, substation_id, builder_values(locals(), "substation_id"))


def feeder(
    feeder_id: str,
    *,
    ref_substation: str,
    name: str | None = None,
    description: str | None = None,
    address: Mapping[str, Any] | None = None,
    location: Place | None = None,
    ref_device: Sequence[str] | None = None,
    rated_current: Number | None = None,
) -> Json:
    """A normalized ``Feeder`` (id ``urn:ngsi-ld:Feeder:<feeder_id>``)."""
    return assemble(FEEDER, feeder_id, builder_values(locals(), "feeder_id"))
