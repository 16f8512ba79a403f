"""Every builder's output, in keyValues form, validates against the vendored Smart Data Model schemas."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from referencing import Registry

import flexmeter.ngsi_models as nm
from flexmeter.ngsi_models import BUILDERS, EntityTable
from tests.ngsi_models.conftest import Validate
from tests.ngsi_models.samples import SAMPLES

COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"
OWN_TYPE_SCHEMA_PARTS = [
    {"$ref": f"{COMMON}#/definitions/GSMA-Commons"},
    {"$ref": f"{COMMON}#/definitions/Location-Commons"},
]

IDS = [table.entity_type + ("Heat" if table is nm.HEAT_METER_OBSERVATION else "") for table, _ in BUILDERS]


def _build(builder: Callable[..., dict[str, Any]], full: bool) -> dict[str, Any]:
    local_id, full_inputs, minimal_inputs = SAMPLES[builder]
    return builder(local_id, **(full_inputs if full else minimal_inputs))


def _own_type_validate(sdm_validator: Any, table: EntityTable, entity: dict[str, Any]) -> None:
    schema = {
        "allOf": [*OWN_TYPE_SCHEMA_PARTS, {"properties": {"type": {"enum": [table.entity_type]}}}],
        "required": ["id", "type", *(row.attribute for row in table.rows if row.required)],
    }
    errors = list(sdm_validator(schema).iter_errors(entity))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("full", [True, False], ids=["full", "minimal"])
@pytest.mark.parametrize(("table", "builder"), BUILDERS, ids=IDS)
def test_builder_output_validates(
    table: EntityTable,
    builder: Callable[..., dict[str, Any]],
    full: bool,
    validate_model: Validate,
    sdm_validator: Any,
) -> None:
    entity = _build(builder, full)
    key_values = nm.to_key_values(entity)
    json.dumps(key_values, allow_nan=False)  # plain JSON, no Decimal or NaN left
    if table.sdm_model is not None:
        validate_model(table.sdm_model, key_values)
    else:
        _own_type_validate(sdm_validator, table, key_values)


@pytest.mark.parametrize(("table", "builder"), BUILDERS, ids=IDS)
def test_full_sample_exercises_every_row(table: EntityTable, builder: Callable[..., dict[str, Any]]) -> None:
    """So that the validation above really covers every attribute of every table."""
    entity = _build(builder, True)
    assert {row.attribute for row in table.rows} <= set(entity)


def _schema_properties(schema: dict[str, Any], registry: Registry) -> set[str]:
    resolver = registry.resolver()
    names: set[str] = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        if "$ref" in part:
            part = resolver.lookup(part["$ref"]).contents
        names |= _schema_properties(part, registry)
    return names


@pytest.mark.parametrize(
    ("table", "builder"), [b for b in BUILDERS if b[0].sdm_model], ids=lambda x: getattr(x, "entity_type", "")
)
def test_extension_marks_are_truthful(
    table: EntityTable, builder: Any, sdm_schema: Any, sdm_registry: Registry
) -> None:
    """A row not marked as extension is an attribute of the model; a row marked as one is not."""
    assert table.sdm_model is not None
    official = _schema_properties(sdm_schema(table.sdm_model), sdm_registry)
    for row in table.rows:
        assert (row.attribute in official) != row.extension, row.attribute


@pytest.mark.parametrize(
    ("table", "builder"), [b for b in BUILDERS if b[0].sdm_model], ids=lambda x: getattr(x, "entity_type", "")
)
def test_enums_are_subsets_of_the_schema(
    table: EntityTable, builder: Any, sdm_schema: Any, sdm_registry: Registry
) -> None:
    assert table.sdm_model is not None
    text = json.dumps(
        [
            sdm_schema(table.sdm_model),
            *(
                sdm_registry.resolver().lookup(ref).contents
                for ref in (
                    "https://smart-data-models.github.io/dataModel.Device/device-schema.json",
                    "https://smart-data-models.github.io/dataModel.Alert/alert-schema.json",
                )
            ),
        ]
    )
    for row in table.rows:
        if row.enum and not row.extension and row.attribute != "meterType":
            for value in row.enum:
                assert json.dumps(value) in text, (row.attribute, value)


MODELS = [
    "ThreePhaseAcMeasurement",
    "ACMeasurement",
    "WaterConsumptionObserved",
    "SmartMeteringObservation",
    "Device",
    "Alert",
    "Anomaly",
    "DeviceMeasurement",
]


@pytest.mark.parametrize("model", MODELS)
def test_official_examples_validate(model: str, sdm_dir: Path, validate_model: Validate) -> None:
    """The harness itself: the models' own examples pass (keyValues), except Alert's documented defect."""
    example = json.loads((sdm_dir / model / "example-normalized.json").read_text(encoding="utf-8"))
    key_values = nm.Entity.model_validate(example).to_key_values()
    if model == "Alert":
        # dateCreated/dateModified "2019-06-06T12:06:06" have no zone: not RFC 3339 (../shared/sdm/README.md)
        with pytest.raises(AssertionError, match="dateCreated"):
            validate_model(model, key_values)
        return
    validate_model(model, key_values)


@pytest.mark.parametrize(
    ("model", "builder", "path", "bad"),
    [
        ("ACMeasurement", nm.ac_measurement, ("phaseVoltage", "L1"), -230),
        ("ACMeasurement", nm.ac_measurement, ("phaseType",), "twoPhase"),
        ("ACMeasurement", nm.ac_measurement, ("dateObserved",), "2026-11-27 03:15"),
        ("ThreePhaseAcMeasurement", nm.three_phase_ac_measurement, ("totalActiveEnergyImport",), "150781"),
        ("WaterConsumptionObserved", nm.water_consumption_observed, ("waterConsumption",), 191.5),
        ("Device", nm.device, ("controlledProperty",), ["heat"]),
        ("Alert", nm.alert, ("category",), "energy"),
        ("Anomaly", nm.anomaly, ("detectedBy",), "not a uri"),
    ],
)
def test_schema_rejects_what_builders_must_never_write(
    model: str, builder: Any, path: tuple[str, ...], bad: Any, validate_model: Validate
) -> None:
    """Negative controls: the validation is live (formats, enums, ranges, types are checked)."""
    key_values = copy.deepcopy(nm.to_key_values(_build(builder, True)))
    target = key_values
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(AssertionError):
        validate_model(model, key_values)


def test_required_attribute_missing_is_rejected(validate_model: Validate) -> None:
    key_values = nm.to_key_values(_build(nm.ac_measurement, False))
    del key_values["location"]
    with pytest.raises(AssertionError, match="location"):
        validate_model("ACMeasurement", key_values)
