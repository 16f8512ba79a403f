"""Known answers for the event analytics through the service core: outages, water, heat, completeness,
NIALM; each checked on the result entities the service queues for the broker."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from flexmeter.ngsi_models import ac_measurement, building, device
from flexmeter.service.engine import Engine
from flexmeter.service.queries import Queries
from flexmeter.service.store import tenant_key
from flexmeter.service.synthetic import WHERE, heat_reading, water_reading, when

DAY0 = 1_789_948_800.0  # 2026-09-21T00:00:00Z


def send(engine: Engine, tenant: str, entities: list[dict]) -> dict[str, int]:
    return engine.notify(tenant, "/", {"subscriptionId": "s", "data": entities})


def outbox(engine: Engine, prefix: str) -> dict[str, dict]:
    engine.settle()
    return {eid: json.loads(body) for eid, body in engine.store.query("SELECT eid, body FROM outbox")
            if eid.startswith(prefix)}


def meter_reading(name: str, t: float, status: str | None = None, kwh: float = 100.0) -> dict:
    entity = ac_measurement(name, observed_at=when(t), location=WHERE, phase_type="singlePhase",
                            ref_device=[f"urn:ngsi-ld:Device:{name}"], total_active_energy_import=kwh)
    if status:
        entity["status"] = {"type": "Text", "value": status}
    return entity


def test_outage_alert_with_customers_start_restoration_duration(engine: Engine, tenant: str) -> None:
    feeder, house = "urn:ngsi-ld:Feeder:F9", "urn:ngsi-ld:Building:B7"
    send(engine, tenant, [building("B7", customers_count=12, ref_feeder=feeder)]
         + [device(f"E{i}", meter_type="electricity", ref_feeder=feeder, ref_building=house) for i in range(3)])
    t0 = DAY0 + 3600.0
    send(engine, tenant, [meter_reading(f"E{i}", t0) for i in range(3)])
    # two meters' last gasps (one delivered twice, one through the agent's Alert entity), late and out of order
    gasp_alert = {"id": "urn:ngsi-ld:Alert:E1:lastGasp", "type": "Alert",
                  "subCategory": {"type": "Text", "value": "powerOutage"},
                  "alertSource": {"type": "Text", "value": "urn:ngsi-ld:ACMeasurement:E1"},
                  "dateIssued": {"type": "DateTime", "value": "2026-09-21T01:00:40.000Z"}}
    send(engine, tenant, [meter_reading("E0", t0 + 30.0, "powerOutage")])
    send(engine, tenant, [gasp_alert, meter_reading("E0", t0 + 30.0, "powerOutage")])
    alerts = outbox(engine, "urn:ngsi-ld:Alert:Outage:")
    assert len(alerts) == 1
    open_alert = next(iter(alerts.values()))
    assert open_alert["alertSource"]["value"] == "urn:ngsi-ld:Feeder:F9"
    assert open_alert["validFrom"]["value"] == "2026-09-21T01:00:30.000Z" and "validTo" not in open_alert
    # the building's 12 customers are shared by its 3 customer meters: 2 meters out, 8 customers
    assert open_alert["data"]["value"]["customersAffected"] == 8
    assert open_alert["severity"]["value"] == "high"
    active = Queries(engine.store, engine.config).alarms(tenant_key(tenant, "/"), True)
    assert [a["kind"] for a in active] == ["powerOutage"]
    # restoration: ordinary readings again
    send(engine, tenant, [meter_reading("E0", t0 + 600.0, "ok"), meter_reading("E1", t0 + 900.0)])
    closed = next(iter(outbox(engine, "urn:ngsi-ld:Alert:Outage:").values()))
    assert closed["validTo"]["value"] == "2026-09-21T01:15:00.000Z"
    assert closed["data"]["value"]["durationSeconds"] == 870 and closed["data"]["value"]["restored"] is True
    assert Queries(engine.store, engine.config).alarms(tenant_key(tenant, "/"), True) == []


def test_leak_is_flagged_on_the_third_night_not_before(engine: Engine, tenant: str) -> None:
    meter = "urn:ngsi-ld:WaterConsumptionObserved:W9"
    litres = 1000.0
    for night in range(4):
        batch = []
        for step in range(96):  # every 15 min over a day
            t = DAY0 + night * 86400.0 + step * 900.0
            hour = step / 4
            flow = 0.008 if night >= 1 and 1 <= hour < 5 else (0.001 if 1 <= hour < 5 else 0.2)
            litres += flow * 250.0
            batch.append(water_reading("W9", t, int(litres), flow))
        send(engine, tenant, batch)
        leaks = outbox(engine, "urn:ngsi-ld:Anomaly:leak:")
        if night < 3:
            assert leaks == {}, f"flagged after night {night}"
    (leak,) = outbox(engine, "urn:ngsi-ld:Anomaly:leak:").values()
    assert leak["id"] == "urn:ngsi-ld:Anomaly:leak:WaterConsumptionObserved:W9:2026-09-22"
    assert leak["refDevice"]["value"] == meter and leak["anomalyType"]["value"] == "leak"
    assert leak["dateDetected"]["value"] == "2026-09-24T04:00:00.000Z"
    assert [b["measuredValue"] for b in leak["thresholdBreach"]["value"]] == [8, 8, 8]
    nights = Queries(engine.store, engine.config).water(tenant_key(tenant, "/"), meter)
    assert [n["minimumFlow"] for n in nights] == [1.0, 8.0, 8.0, 8.0]


def test_backflow(engine: Engine, tenant: str) -> None:
    send(engine, tenant, [water_reading("W3", DAY0 + 60.0 * i, 500 + i, -0.05 if i == 3 else 0.1)
                          for i in range(6)])
    (found,) = outbox(engine, "urn:ngsi-ld:Anomaly:backflow:").values()
    assert found["thresholdBreach"]["value"][0]["measuredValue"] == 50  # l/h


def test_low_delta_t_after_n_intervals_and_daily_peak(engine: Engine, tenant: str) -> None:
    send(engine, tenant, [building("H", contracted_heat_power=100),
                          device("HM", meter_type="heat", ref_building="urn:ngsi-ld:Building:H")])
    readings = []
    energy = 5000.0
    for k in range(12 * 26):  # every 5 min for 26 h
        t = DAY0 + 300.0 * k
        back = 55.0 if 12 <= k < 12 + 15 else 40.0  # 75 min of ΔT 15 K (5 intervals), else 30 K
        power = 120.0 if k == 100 else 80.0
        energy += power / 12.0
        entity = heat_reading("HM", t, 70.0, back, energy, power)
        entity["refDevice"] = {"type": "Relationship", "value": "urn:ngsi-ld:Device:HM"}
        readings.append(entity)
    for i in range(0, len(readings), 50):
        send(engine, tenant, readings[i:i + 50])
    (low,) = outbox(engine, "urn:ngsi-ld:Anomaly:lowDeltaT:").values()
    assert low["dateDetected"]["value"] == "2026-09-21T02:00:00.000Z"  # the 4th interval below 20 K ends
    heat = Queries(engine.store, engine.config).heat(tenant_key(tenant, "/"), None, DAY0, DAY0 + 2 * 86400)
    assert [i["deltaT"] for i in heat["intervals"][:7]] == [30.0, 30.0, 30.0, 30.0, 15.0, 15.0, 15.0]
    assert heat["daily"] == [{"meter": "urn:ngsi-ld:SmartMeteringObservation:HM", "day": "2026-09-21",
                              "peakPower": 120.0, "contractedPower": 100.0, "exceeded": True}]
    (peak,) = outbox(engine, "urn:ngsi-ld:Anomaly:peakPower:").values()
    assert peak["anomalyType"]["value"] == "other" and peak["anomalousProperty"]["value"] == "thermalPower"
    (daily,) = [p for p in outbox(engine, "urn:ngsi-ld:ConsumptionProfile:SmartMeteringObservation").values()
                if p["resolution"]["value"] == "P1D"]
    assert daily["vector"]["value"] == "heat"
    assert daily["consumption"]["value"] == pytest.approx(80.0 * 24 + 40.0 / 12, abs=0.01)
    # the building's own profile (the sum of its heat meters: here one)
    (per_building,) = [p for p in outbox(engine, "urn:ngsi-ld:ConsumptionProfile:Building:H:heat:P1D").values()]
    assert per_building["refBuilding"]["value"] == "urn:ngsi-ld:Building:H" and "refDevice" not in per_building
    assert per_building["consumption"]["value"] == daily["consumption"]["value"]


def test_completeness_and_silence(engine: Engine, tenant: str) -> None:
    readings = [meter_reading("C1", DAY0 + 10.0 * i, kwh=1.0 + i / 100) for i in range(360) if i % 4]  # 3/4 of them
    send(engine, tenant, readings)
    report = Queries(engine.store, engine.config).completeness(tenant_key(tenant, "/"), date(2026, 9, 21))
    (meter,) = report["meters"]
    assert meter["intervalSeconds"] == 10.0 and meter["received"] == 270
    assert meter["completeness"] == pytest.approx(0.75, abs=0.01)
    engine.jobs.silence(now=time.time() + 3600.0)
    (silent,) = outbox(engine, "urn:ngsi-ld:Anomaly:silence:").values()
    assert silent["anomalyType"]["value"] == "silence"
    active = Queries(engine.store, engine.config).alarms(tenant_key(tenant, "/"), True)
    assert [a["kind"] for a in active] == ["silence"]


def test_nialm_on_one_hertz_power(engine: Engine, tenant: str) -> None:
    entities = []
    for t in range(0, 3600):
        p = 100.0 + (2000.0 if 300 <= t < 1200 else 0.0)
        entity = ac_measurement("N1", observed_at=when(DAY0 + t), location=WHERE, phase_type="singlePhase",
                                total_active_power=p, total_reactive_power=10.0)
        entities.append(entity)
    for i in range(0, len(entities), 500):
        send(engine, tenant, entities[i:i + 500])
    result = Queries(engine.store, engine.config).nialm(tenant_key(tenant, "/"), "urn:ngsi-ld:ACMeasurement:N1",
                                                        date(2026, 9, 21))
    assert result["events"] == 2 and len(result["signatures"]) == 1
    assert result["signatures"][0]["deltaP"] == 2000.0
    assert result["signatures"][0]["energy"] == pytest.approx(0.5, abs=0.001)
