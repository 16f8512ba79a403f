"""Notified entities → canonical readings, for the shapes the Connode agent and the builders write."""

from __future__ import annotations

import pytest

from flexmeter.service.readings import observe


def attr(value: object, unit: str | None = None, kind: str = "Number") -> dict:
    item: dict = {"type": kind, "value": value}
    if unit:
        item["metadata"] = {"unitCode": {"type": "Text", "value": unit}}
    return item


def test_connode_e350_reading() -> None:
    entity = {"id": "urn:ngsi-ld:ACMeasurement:e350-1", "type": "ACMeasurement",
              "TimeInstant": attr("2026-09-21T14:15:10.000Z", kind="DateTime"),
              "totalActiveEnergyImport": attr(1234.5, "KWH"), "totalActiveEnergyExport": attr(10.25, "KWH"),
              "totalActivePower": attr(1500, "WTT"), "totalActivePowerExport": attr(200, "WTT"),
              "phaseVoltage": attr({"L1": 231.0, "L2": 12.0, "L3": 229.5}, "VLT", "StructuredValue"),
              "status": attr("ok", kind="Text"), "refSubstation": attr("urn:ngsi-ld:Substation:S", kind="Relationship")}
    obs = observe(entity)
    assert obs.t == 1790000110.0 and obs.vector == "electricity"
    assert obs.values == {"e_imp": 1234.5, "e_exp": 10.25, "p": 1300.0}
    assert ("", False) in obs.supply and ("L2", True) in obs.supply and ("L1", False) in obs.supply
    assert obs.links == {"refSubstation": ["urn:ngsi-ld:Substation:S"]}


def test_connode_last_gasp_and_echelon_kilowatts() -> None:
    gasp = observe({"id": "m", "type": "ACMeasurement", "status": attr("powerOutage", kind="Text"),
                    "TimeInstant": attr("2026-09-21T10:00:00Z", kind="DateTime")})
    assert gasp.supply == [("", True)]
    echelon = observe({"id": "s", "type": "ThreePhaseAcMeasurement",
                       "totalActivePowerImport": attr(12.5, "KWT"), "totalActivePowerExport": attr(0.5, "KWT"),
                       "totalActivePower": attr(12.0, "KWT"), "totalReactivePower": attr(2, "KVR"),
                       "powerOutage": attr({"L1": False, "L2": True, "L3": False}, kind="StructuredValue")})
    assert echelon.values["p"] == 12000.0 and echelon.values["q"] == 2000.0
    assert ("L2", True) in echelon.supply


def test_district_heat_units_are_converted() -> None:
    obs = observe({"id": "h", "type": "SmartMeteringObservation", "totalConsumption": attr(1.5, "MWH"),
                   "flowRate": attr(1200, "E32"), "instantPower": attr(45000, "WTT"),
                   "forwardTemperature": attr(70.5, "CEL"), "returnTemperature": attr(40.25, "CEL")})
    assert obs.vector == "heat"
    assert obs.values == pytest.approx({"h_e": 1500.0, "h_flow": 1.2, "h_p": 45.0, "t_f": 70.5, "t_r": 40.25})


def test_water_in_cubic_metres_and_key_values() -> None:
    normalized = observe({"id": "w", "type": "WaterConsumptionObserved", "waterConsumption": attr(12.345, "MTQ")})
    assert normalized.values == {"w_vol": 12345.0} and normalized.vector == "water"
    key_values = observe({"id": "w", "type": "WaterConsumptionObserved", "waterConsumption": 500, "flow": -0.01})
    assert key_values.values == {"w_vol": 500.0, "w_flow": -0.01}
