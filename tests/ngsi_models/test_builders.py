"""Builders: exact values, Orion's time format, unitCode metadata, ids, and specific errors on bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D
from typing import Any

import pytest

import flexmeter.ngsi_models as nm
from flexmeter.ngsi_models import (
    Entity,
    GeoPoint,
    InvalidIdentifierError,
    InvalidValueError,
    NgsiModelError,
    UnknownFieldError,
)
from tests.ngsi_models.samples import SAMPLES, TURIN, T

DEV = "urn:ngsi-ld:Device:"


def ac(**kwargs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"observed_at": T, "location": TURIN, "phase_type": "threePhase"}
    return nm.ac_measurement("m1", **(base | kwargs))


def test_normalized_shape_with_unit_code_and_time() -> None:
    entity = nm.heat_meter_observation(
        "kam-1",
        observed_at=T,
        total_consumption=D("1234567.891"),
        forward_temperature=D("72.4"),
        ref_device=DEV + "kam-1",
    )
    assert entity["id"] == "urn:ngsi-ld:SmartMeteringObservation:kam-1"
    assert entity["type"] == "SmartMeteringObservation"
    assert entity["meterType"] == {"type": "Text", "value": "Heat"}
    assert entity["totalConsumption"] == {
        "type": "Number",
        "value": 1234567.891,
        "metadata": {"unitCode": {"type": "Text", "value": "KWH"}},
    }
    assert entity["forwardTemperature"]["metadata"]["unitCode"]["value"] == "CEL"
    assert entity["refDevice"] == {"type": "Relationship", "value": DEV + "kam-1"}
    assert entity["TimeInstant"] == {"type": "DateTime", "value": "2026-11-27T03:15:00.250Z"}


def test_decimals_are_written_exactly() -> None:
    entity = ac(
        total_active_energy_import=D("4711.123"),
        total_active_energy_export=D("815.500"),
        phase_voltage={"L1": D("230.1")},
        frequency=D("50"),
    )
    text = json.dumps(entity)
    assert '"value": 4711.123' in text and '"value": 815.5' in text and '"L1": 230.1' in text
    assert entity["frequency"]["value"] == 50 and isinstance(entity["frequency"]["value"], int)


def test_more_digits_than_json_carries_are_refused_not_rounded() -> None:
    with pytest.raises(InvalidValueError, match="more digits"):
        ac(total_active_energy_import=D("123456789012.123456789"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), D("NaN"), True, "12.5"])
def test_non_numbers_are_refused(bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        ac(frequency=bad)


def test_local_times_become_utc_in_orions_format() -> None:
    rome = timezone(timedelta(hours=1))
    entity = ac(observed_at=datetime(2026, 11, 27, 4, 15, 0, 250999, tzinfo=rome))
    assert entity["dateObserved"]["value"] == "2026-11-27T03:15:00.250Z"
    assert entity["TimeInstant"] == entity["dateObserved"]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="naive"):
        ac(observed_at=datetime(2026, 11, 27, 3, 15))


def test_three_phase_attributes_carry_timestamp_metadata() -> None:
    entity = nm.three_phase_ac_measurement(
        "tr1", observed_at=T, frequency=D("50.01"), active_power={"L1": -5}, name="TR1"
    )
    for name in ("frequency", "activePower"):
        assert entity[name]["metadata"]["timestamp"] == {
            "type": "DateTime",
            "value": "2026-11-27T03:15:00.250Z",
        }
    assert "metadata" not in entity["name"]
    assert entity["activePower"]["value"] == {"L1": -5}  # export as negative power is allowed here


def test_ac_measurement_keeps_the_schema_minimum_on_phase_power() -> None:
    with pytest.raises(InvalidValueError, match=r"activePower.L2: -5 is below the minimum 0"):
        ac(active_power={"L1": 5, "L2": -5})
    assert ac(total_active_power=-1250)["totalActivePower"]["value"] == -1250


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"power_factor": {"L1": D("1.01")}}, InvalidValueError, "above the maximum 1"),
        ({"thd_voltage": {"L1": D("-0.1")}}, InvalidValueError, "below the minimum 0"),
        ({"phase_voltage": {"L4": 230}}, UnknownFieldError, "L4"),
        ({"phase_voltage": {}}, InvalidValueError, "non-empty"),
        ({"phase_type": "twoPhase"}, InvalidValueError, "twoPhase"),
        ({"ref_device": "urn:ngsi-ld:Device:x"}, InvalidValueError, "non-empty list"),
        ({"ref_device": ["urn:ngsi-ld:Device:a b"]}, InvalidIdentifierError, "not allowed"),
        ({"ref_device": ["urn:ngsi-ld:Device:a", "urn:ngsi-ld:Device:a"]}, InvalidValueError, "duplicate"),
        ({"location": (7.6, 45.0)}, InvalidValueError, "GeoPoint"),
    ],
)
def test_bad_inputs_get_specific_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ac(**kwargs)


def test_single_phase_uses_L_and_refuses_line_to_line() -> None:
    entity = ac(phase_type="singlePhase", phase_voltage={"L": D("230.1")}, current={"L": 2, "N": 2})
    assert entity["phaseVoltage"]["value"] == {"L": 230.1}
    assert entity["phaseType"]["value"] == "singlePhase"
    with pytest.raises(UnknownFieldError, match="L1"):
        ac(phase_type="singlePhase", phase_voltage={"L1": 230})
    with pytest.raises(UnknownFieldError, match="single-phase"):
        ac(phase_type="singlePhase", phase_to_phase_voltage={"L12": 400})


def test_phase_values_come_out_in_canonical_order() -> None:
    entity = ac(current={"N": 1, "L3": 3, "L1": 1})
    assert list(entity["current"]["value"]) == ["L1", "L3", "N"]


def test_ids_follow_sdm_convention_and_keep_urns() -> None:
    assert nm.device("abc", meter_type="water")["id"] == "urn:ngsi-ld:Device:abc"
    assert nm.device("urn:ngsi-ld:Device:xyz", meter_type="water")["id"] == "urn:ngsi-ld:Device:xyz"
    for bad in ("a b", "a/b", "a#b", "a?b", "x" * 300, "a;b", "è"):
        with pytest.raises(InvalidIdentifierError):
            nm.device(bad, meter_type="water")


def test_required_inputs_are_enforced() -> None:
    with pytest.raises(InvalidValueError, match="controlledProperty is required"):
        nm.device("m1")
    with pytest.raises(InvalidValueError, match="refDevice or refBuilding"):
        nm.consumption_profile("p", vector="heat", resolution="P1D", period_start=T, period_end=T + timedelta(1))


def test_device_defaults_and_topology() -> None:
    entity = nm.device(
        "kam-1",
        meter_type="heat",
        ref_building="urn:ngsi-ld:Building:b1",
        meter_protocol="mbus",
        supported_protocol=["mqtt", "mqtt"],
    )
    kv = nm.to_key_values(entity)
    assert kv["controlledProperty"] == ["energy", "power", "temperature", "waterFlow"]
    assert kv["deviceCategory"] == ["meter"]
    assert kv["controlledAsset"] == ["urn:ngsi-ld:Building:b1"]
    assert kv["supportedProtocol"] == ["mqtt"]
    assert entity["refBuilding"]["type"] == "Relationship"
    assert "TimeInstant" not in entity
    with pytest.raises(InvalidValueError, match="mbus"):
        nm.device("kam-1", meter_type="heat", supported_protocol=["mbus"])


def test_heat_delta_t_is_derived_only_from_exact_inputs() -> None:
    exact = nm.heat_meter_observation("h", observed_at=T, forward_temperature=D("70.1"), return_temperature=D("40.3"))
    assert exact["temperatureDifference"]["value"] == 29.8
    assert exact["temperatureDifference"]["metadata"]["unitCode"]["value"] == "KEL"
    floats = nm.heat_meter_observation("h", observed_at=T, forward_temperature=70.1, return_temperature=40.3)
    assert "temperatureDifference" not in floats


def test_water_register_in_whole_litres() -> None:
    litres = nm.convert(D("191.051"), "MTQ", "LTR")
    entity = nm.water_consumption_observed("w", observed_at=T, water_consumption=litres, alarm_tamper=True)
    assert entity["waterConsumption"]["value"] == 191051
    assert entity["waterConsumption"]["metadata"]["unitCode"]["value"] == "LTR"
    assert entity["alarmTamper"]["value"] == 1
    with pytest.raises(InvalidValueError, match="whole number"):
        nm.water_consumption_observed("w", observed_at=T, water_consumption=D("191051.5"))


def test_unit_conversion_is_exact() -> None:
    assert nm.convert(D("1234.567"), "MWH", "KWH") == D("1234567")
    assert nm.convert(D("1"), "WHR", "KWH") == D("0.001")
    assert nm.convert(12, "KWT", "WTT") == 12000
    with pytest.raises(InvalidValueError, match="cannot convert"):
        nm.convert(1, "KWH", "VLT")
    with pytest.raises(InvalidValueError, match="unknown unit"):
        nm.convert(1, "XYZ", "KWH")


def test_consumption_profile_unit_follows_the_commodity() -> None:
    base: dict[str, Any] = {
        "resolution": "PT1H",
        "period_start": T,
        "period_end": T + timedelta(hours=1),
        "ref_device": DEV + "m",
        "consumption": D("0.5"),
    }
    water = nm.consumption_profile("p", vector="water", **base)
    heat = nm.consumption_profile("p", vector="heat", **base)
    assert water["consumption"]["metadata"]["unitCode"]["value"] == "MTQ"
    assert heat["consumption"]["metadata"]["unitCode"]["value"] == "KWH"
    assert heat["TimeInstant"]["value"] == "2026-11-27T04:15:00.250Z"
    with pytest.raises(InvalidValueError, match="end after"):
        nm.consumption_profile("p", vector="heat", **(base | {"period_end": T}))


def test_alert_and_anomaly() -> None:
    alert = nm.alert(
        "o1",
        category="security",
        alert_source=DEV + "m",
        issued_at=T,
        data={"event": "lastGasp", "customersAffected": 1},
    )
    assert alert["dateIssued"] == alert["TimeInstant"]
    assert alert["data"] == {
        "type": "StructuredValue",
        "value": {"event": "lastGasp", "customersAffected": 1},
    }
    with pytest.raises(InvalidValueError, match="validTo is before validFrom"):
        nm.alert(
            "o1",
            category="security",
            alert_source=DEV + "m",
            issued_at=T,
            valid_from=T,
            valid_to=T - timedelta(1),
        )
    with pytest.raises(InvalidValueError, match="energy"):
        nm.alert("o1", category="energy", alert_source=DEV + "m", issued_at=T)  # type: ignore[arg-type]
    breach = nm.ThresholdBreach(T, D("0.012"), "UPPER", D("0.005"))
    anomaly = nm.anomaly("a1", anomalous_property="flow", detected_at=T, threshold_breach=[breach])
    assert anomaly["thresholdBreach"]["value"] == [
        {
            "dateObserved": "2026-11-27T03:15:00.250Z",
            "measuredValue": 0.012,
            "thresholdType": "UPPER",
            "thresholdValue": 0.005,
        }
    ]
    with pytest.raises(InvalidValueError, match="URI"):
        nm.anomaly("a1", anomalous_property="flow", detected_at=T, detected_by="service")


def test_unknown_inputs_are_refused() -> None:
    from flexmeter.ngsi_models.models.electricity import AC_MEASUREMENT
    from flexmeter.ngsi_models.table import assemble

    with pytest.raises(UnknownFieldError, match="volts"):
        assemble(
            AC_MEASUREMENT,
            "m",
            {"observed_at": T, "location": TURIN, "phase_type": "singlePhase", "volts": 1},
        )


def test_errors_belong_to_the_package_tree_and_render_as_ngsi_errors() -> None:
    with pytest.raises(NgsiModelError) as caught:
        ac(frequency=-1)
    assert caught.value.to_ngsi_error()["error"] == "BadRequest"
    assert "frequency" in caught.value.to_ngsi_error()["description"]


@pytest.mark.parametrize("builder", list(SAMPLES), ids=lambda b: b.__name__)
def test_builder_output_is_a_valid_wire_entity(builder: Any) -> None:
    """The same dict goes through the pydantic wire model unchanged, and keyValues agree."""
    local_id, full, _ = SAMPLES[builder]
    entity = builder(local_id, **full)
    model = Entity.model_validate(entity)
    assert model.to_json() == entity
    assert model.to_key_values() == nm.to_key_values(entity)
    assert json.loads(json.dumps(entity)) == entity


def test_geo_point_is_longitude_first() -> None:
    assert GeoPoint(7.6869, 45.0703).geojson() == {"type": "Point", "coordinates": [7.6869, 45.0703]}
    assert nm.format_datetime(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize("text", ["Via dell'Arsenale", "a<b", 'say "hi"', "x=1", "a;b", "f(x)"])
def test_characters_orion_forbids_in_values_are_refused(text: str) -> None:
    with pytest.raises(InvalidValueError, match="Orion forbids"):
        nm.building("b1", name=text)
    with pytest.raises(InvalidValueError, match="Orion forbids"):
        nm.alert("a", category="security", alert_source=DEV + "m", issued_at=T, data={"note": [text]})
