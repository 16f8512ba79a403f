"""The business service finds what the simulator injected: both pilots, end to end, checked against the truth.

A small generated fleet of both pilots (Turin: 2 buildings with heat, water and ST-I meters, a substation,
a NIALM sensor, the ENNOVA hub; Malmö: 2 E350, 2 substations with their Echelon, 2 district-heat meters),
provisioned with the orion_config subscriptions, runs through the real Mosquitto and RabbitMQ, the agents,
the embedded broker, the time series and the business service. The simulator covers 56.5 simulated hours
(three nights, for the leak) in ~8 s (``--speed 25000``), with the electricity meters configured to
15-min load-profile pushes on the clock (``--interval ROLE=900 --on-clock``) and the NIALM sensor and the
ENNOVA hub slowed down, so the run is ~3,400 readings. Everything works on the readings' own timestamps.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pika
import pytest
import requests
import yaml

from flexmeter.evaluation.hops import timeseries_counts
from flexmeter.evaluation.pilots import READING_TYPES
from flexmeter.simulator.generate import pilot_inventory, tag_inventory
from tests.support.processes import FlexmeterProcess, free_port

pytestmark = pytest.mark.xdist_group("shared-brokers")

ROOT = Path(__file__).resolve().parents[2]
SEED = 3
SCALE = 0.0004                       # Turin: 2 buildings; Malmö: the minimum (2 E350, 2 substations)
START = "2026-11-23T19:00:00Z"       # 20:00 in Turin and Malmö: the leak starts before the first night
DURATION = 203_400                   # 56.5 h: three nights (02-04 local) and the morning after the third
INTERVALS = {"elec_dlms": 900, "substation_dlms": 900, "e350": 900, "pv": 900, "echelon": 900,
             "heat_mbus": 900, "water_wmbus": 900, "heat_connode": 900, "nialm": 900, "ennova": 3600}
SPEED = 25_000                       # ~8 s of wall time, ~400 readings/s: paced, not a burst (Mosquitto drops
                                     # QoS 1 messages beyond 1,000 queued for a client that falls behind)
TIMEZONE = "Europe/Rome"             # the service's local time (Malmö is in the same zone in November)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _write_inventory(directory: Path, pilot: str, tag: str) -> tuple[Path, dict[str, Any]]:
    """A pilot inventory whose apikeys and tenant carry ``tag`` (Mosquitto/RabbitMQ are shared), with the
    time-series and service subscriptions of the generated inventory."""
    document, keys = pilot_inventory(pilot, SCALE, SEED, f"{pilot}.keys")
    tenant: dict[str, Any] = tag_inventory(document, tag)["tenants"][0]
    (directory / f"{pilot}.keys").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    path = directory / f"{pilot}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path, tenant


@dataclass
class PilotRun:
    truth: dict[str, Any]
    summary: dict[str, Any]
    broker: str
    service: str
    timeseries: str
    tenants: dict[str, dict[str, Any]]   # pilot -> its inventory tenant (service, buildings, meters...)

    def headers(self, pilot: str) -> dict[str, str]:
        return {"Fiware-Service": self.tenants[pilot]["service"], "Fiware-ServicePath": f"/{pilot}"}

    def pilot_of(self, item: str) -> str:
        return "turin" if "-TO-" in item or item.startswith("TO-") else "malmo"

    def building(self, pilot: str, building_id: str) -> dict[str, Any]:
        return next(b for b in self.tenants[pilot]["buildings"] if b["id"] == building_id)

    def api(self, pilot: str, path: str, **params: str) -> Any:
        response = requests.get(f"{self.service}{path}", params=params, headers=self.headers(pilot), timeout=30)
        response.raise_for_status()
        return response.json()

    def injected(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.truth["injected"] if i["kind"] == kind]

    def entities(self, pilot: str, entity_type: str, path: str = "/#") -> list[dict[str, Any]]:
        response = requests.get(f"{self.broker}/v2/entities", params={"type": entity_type, "limit": "1000"},
                                headers={"Fiware-Service": self.tenants[pilot]["service"],
                                         "Fiware-ServicePath": path},
                                timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found


def _metric(text: str, name: str, label: str = "") -> float:
    total = 0.0
    for match in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        if label in (match.group(1) or ""):
            total += float(match.group(2))
    return total


@pytest.fixture(scope="module")
def pilot_run(tmp_path_factory: pytest.TempPathFactory, mqtt_url: str, amqp_url: str) -> Iterator[PilotRun]:
    tmp = tmp_path_factory.mktemp("detections")
    tag = uuid.uuid4().hex[:6]
    queue = f"sim-detect-midori-{tag}"
    inventories = {pilot: _write_inventory(tmp, pilot, tag) for pilot in ("turin", "malmo")}
    south = free_port()
    processes: list[FlexmeterProcess] = []
    try:
        broker = FlexmeterProcess(["broker", "--port", "0", "--db", str(tmp / "broker.db")]).start()
        processes.append(broker)
        timeseries = FlexmeterProcess(["timeseries", "--port", "0", "--db", str(tmp / "ts.db")]).start()
        processes.append(timeseries)
        service = FlexmeterProcess(["service", "--port", "0", "--ngsi-url", broker.url, "--data-dir",
                                    str(tmp / "service"), "--timezone", TIMEZONE]).start()
        processes.append(service)
        agent = FlexmeterProcess(
            ["agent", "mbus", "dlms", "connode", "midori", "ennova", "--north-port", "0", "--south-port", str(south),
             "--ngsi-url", broker.url, "--mqtt-url", mqtt_url, "--amqp-url", amqp_url,
             "--data-dir", str(tmp / "agent"), "--linger", "0.01"],
            env={"FLEXMETER_MIDORI_QUEUE": queue}).start()
        processes.append(agent)
        for path, _ in inventories.values():
            done = subprocess.run([sys.executable, "-m", "flexmeter", "provision", "apply", str(path), "--ngsi-url",
                                   broker.url, "--iota-url", agent.url, "--ql-url", timeseries.url, "--var",
                                   f"SERVICE_URL={service.url}", "--json", "--quiet"],
                                  capture_output=True, text=True, timeout=120, cwd=ROOT)
            assert done.returncode == 0, done.stdout + done.stderr
        time.sleep(1.0)  # MQTT subscriptions and the Midori consumer are up before the first message
        truth_path = tmp / "truth.json"
        args = ["simulate", "--pilot", "all", "--speed", str(SPEED), "--duration", str(DURATION), "--seed", str(SEED),
                "--start", START, "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--south-url",
                f"http://127.0.0.1:{south}", "--midori-queue", queue, "--json", "--progress", "0",
                "--truth", str(truth_path), "--on-clock"]
        for role, seconds in INTERVALS.items():
            args += ["--interval", f"{role}={seconds}"]
        for path, _ in inventories.values():
            args += ["--inventory", str(path)]
        done = subprocess.run([sys.executable, "-m", "flexmeter", *args], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads(done.stdout)
        truth = json.loads(truth_path.read_text())
        sent = sum(truth["sent"]["readings"].values())
        # settle: the service has seen every reading, computed every period and written its results
        deadline = time.monotonic() + 60
        seen = 0.0
        while time.monotonic() < deadline:
            text = requests.get(f"{service.url}/metrics", timeout=5).text
            seen = _metric(text, "flexmeter_service_entities_total", 'outcome="new"')
            if (seen >= sent and _metric(text, "flexmeter_service_pending_periods") == 0
                    and _metric(text, "flexmeter_service_outbox") == 0):
                break
            time.sleep(0.5)
        broker_text = requests.get(f"{broker.url}/metrics", timeout=5).text
        summary["notifications_lost"] = sum(_metric(broker_text, f"flexmeter_broker_notifications_{outcome}_total")
                                            for outcome in ("failed", "dropped"))
        if seen < sent:  # say where readings went missing: per family at the agent, per meter at the service
            text = requests.get(f"{agent.url}/metrics", timeout=5).text
            families = "|".join(("mbus", "dlms", "connode", "midori", "ennova"))
            summary["diagnostics"] = {
                "agent": re.findall(rf'^iota_(?:decoded|forwarded)_total{{family="(?:{families})"}} \S+$', text, re.M),
                "broker_notifications_lost": summary["notifications_lost"],
                "service_readings_per_meter": {
                    m["id"].rsplit(":", 1)[1]: m["readings"] for pilot in inventories
                    for m in requests.get(f"{service.url}/v1/meters", timeout=10, headers={
                        "Fiware-Service": inventories[pilot][1]["service"],
                        "Fiware-ServicePath": f"/{pilot}"}).json()},
                "sent_per_family": truth["sent"]["readings"]}
        # the time series' rows of readings (an attribute every reading of the type carries), per tenant path
        summary["timeseries_rows"] = sum(
            sum(timeseries_counts(timeseries.url, {"Fiware-Service": tenant["service"], "Fiware-ServicePath": path},
                                  entity_type, attr).values())
            for _, tenant in inventories.values() for path in {g["service_path"] for g in tenant["groups"]}
            for entity_type, attr in READING_TYPES.items())
        yield PilotRun(truth, summary | {"service_seen": seen}, broker.url, service.url, timeseries.url,
                       {pilot: tenant for pilot, (_, tenant) in inventories.items()})
    finally:
        for process in reversed(processes):
            process.stop()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete(queue)
        connection.close()




# -- zero loss --------------------------------------------------------------------------------------------------
def test_every_reading_sent_is_acknowledged_and_seen_by_the_service(pilot_run: PilotRun) -> None:
    sent = sum(pilot_run.truth["sent"]["readings"].values())
    assert pilot_run.summary["readings_sent"] == pilot_run.summary["readings_delivered"] == sent > 3000
    assert pilot_run.summary["readings_failed"] == 0
    # every reading reached the broker and was notified to the service: one new observation each
    assert pilot_run.summary["service_seen"] == sent, pilot_run.summary.get("diagnostics")
    # and the broker delivered every notification (to the service and the time series): none timed out
    assert pilot_run.summary["notifications_lost"] == 0
    # every reading is one row of the time series (an E350 last gasp too: the notification carries the
    # entity's other attributes; the breaker command attributes written at provisioning are rows without one)
    assert pilot_run.summary["timeseries_rows"] == sent
    assert set(pilot_run.truth["sent"]["readings"]) == {"mbus", "wmbus", "dlms", "connode", "midori", "ennova"}


# -- the leak ---------------------------------------------------------------------------------------------------
def test_the_injected_leak_is_an_anomaly_on_the_third_night(pilot_run: PilotRun) -> None:
    leaks = pilot_run.injected("leak")
    assert leaks
    anomalies = {e["id"]: e for e in pilot_run.entities("turin", "Anomaly")}
    zone = ZoneInfo(TIMEZONE)
    for leak in leaks:
        started = datetime.fromtimestamp(leak["start"], zone)
        # the first night whose window (02-04 local) the leak covers, then two more
        first = (started if started.hour < 2 else started + timedelta(days=1)).date()
        third_night_end = datetime.combine(first + timedelta(days=2), datetime.min.time(), zone).replace(hour=4)
        assert third_night_end.timestamp() <= pilot_run.truth["end_epoch"]  # the run covers three nights
        entity_id = f"urn:ngsi-ld:Anomaly:leak:WaterConsumptionObserved:{leak['target']}:{first.isoformat()}"
        assert entity_id in anomalies, sorted(anomalies)
        anomaly = anomalies[entity_id]
        assert anomaly["anomalousProperty"]["value"] == "flow"
        # flagged at the end of the third night, not before
        assert _epoch(anomaly["dateDetected"]["value"]) == third_night_end.timestamp()
        minima = [b["measuredValue"] for b in anomaly["thresholdBreach"]["value"]]
        # the night minimum flow is the leak itself (nights are dry): exact to the M-Bus record's l/h
        assert minima == [pytest.approx(leak["params"]["flow_lph"], abs=0.5)] * 3
        nights = pilot_run.api("turin", "/v1/water", meter=f"urn:ngsi-ld:WaterConsumptionObserved:{leak['target']}")
        assert len(nights) >= 3
    leaking = {leak["target"] for leak in leaks}
    others = [a for a in anomalies if ":leak:" in a and not any(f":{m}:" in a for m in leaking)]
    assert not others  # no false alarm on the dry meters
    assert pilot_run.truth["fleet"]["water_wmbus"] > len(leaking)


# -- the outages ------------------------------------------------------------------------------------------------
def test_the_injected_outages_are_alerts_with_area_customers_and_restoration(pilot_run: PilotRun) -> None:
    outages = pilot_run.injected("outage")
    assert {o["params"]["pilot"] for o in outages} == {"turin", "malmo"}
    for outage in outages:
        pilot = outage["params"]["pilot"]
        building = pilot_run.building(pilot, outage["target"])
        # the service reports a customer meter's outage on its feeder (docs/service.md, Outages)
        area = f"urn:ngsi-ld:Feeder:{building['feeder']}"
        alerts = {e["id"]: e for e in pilot_run.entities(pilot, "Alert")}
        entity_id = f"urn:ngsi-ld:Alert:Outage:Feeder:{building['feeder']}:{outage['start']}"
        assert entity_id in alerts, sorted(alerts)
        alert = alerts[entity_id]
        assert alert["alertSource"]["value"] == area
        assert _epoch(alert["validFrom"]["value"]) == outage["start"]  # the last gasp's time
        # restored by the meters' first reading after the supply is back (15-min readings on the clock)
        restored = -(-outage["end"] // 900) * 900
        assert _epoch(alert["validTo"]["value"]) == restored
        data = alert["data"]["value"]
        meters = outage["params"]["meters"]
        assert data["metersAffected"] == len(meters)
        # one customer meter per Turin building stands for its customers; Malmö: one E350 per household
        expected = building["customers_count"] * len(meters) // _customer_meters(pilot_run, pilot, outage["target"])
        assert data["customersAffected"] == expected
        assert data["restored"] is True and data["durationSeconds"] == restored - outage["start"]
        other = [a for a in alerts if a.startswith("urn:ngsi-ld:Alert:Outage:") and a != entity_id]
        assert not other  # no outage was invented elsewhere


def test_silences_are_found_on_data_time_and_are_the_outages(pilot_run: PilotRun) -> None:
    # 56 h of data in ~8 s of wall time: with the wall clock no meter would ever be silent. On data time the
    # meters the outage cut off are silent from their last gasp to their first reading after the restoration
    # (a gap of ~33 min, over the limit of two 15-min intervals), and no other meter is (an hourly hub isn't)
    for pilot in ("turin", "malmo"):
        found = {(a["source"], a["start"], a["end"]) for a in pilot_run.api(pilot, "/v1/alarms", active="false")
                 if a["kind"] == "silence"}
        expected = set()
        for outage in pilot_run.injected("outage"):
            if outage["params"]["pilot"] == pilot:
                restored = -(-outage["end"] // 900) * 900
                expected |= {(meter, _iso(outage["start"]), _iso(restored)) for meter in outage["params"]["meters"]}
        assert expected and {(s.rsplit(":", 1)[1], a, b) for s, a, b in found} == expected


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _customer_meters(run: PilotRun, pilot: str, building: str) -> int:
    return sum(1 for m in run.tenants[pilot]["meters"]
               if m.get("building") == building and m["type"] == "electricity" and m.get("substation"))


# -- the losses -------------------------------------------------------------------------------------------------
def test_the_energy_balance_finds_the_injected_losses(pilot_run: PilotRun) -> None:
    truth_substations = pilot_run.truth["substations"]
    outages = pilot_run.injected("outage")
    assert {s["params"]["rate_pct"] for s in pilot_run.injected("losses")}  # 2-6 % per substation
    for sid, truth in truth_substations.items():
        pilot = pilot_run.pilot_of(sid)
        n_customers = len(truth["customers"])
        assert n_customers >= 1
        area = f"urn:ngsi-ld:Substation:{sid}"
        balances = pilot_run.api(pilot, "/v1/losses", area=area, fromDate=pilot_run.truth["start"],
                                 toDate=pilot_run.truth["end"])["balances"]
        by_start = {_epoch(b["from"]): b for b in balances}
        windows = {w["epoch"]: w for w in truth["windows"]}
        # every 15 min of the run but the last (its closing reading would come after the run)
        assert sorted(by_start) == sorted(windows)[:-1]
        # Each register is an integer of Wh, so a window's energy per register is off by less than 1 Wh:
        # the losses (supply import - export - customers' import + export) by less than 2 Wh per meter.
        tolerance = 0.002 * (1 + n_customers) + 0.0001  # kWh (+ the REST API's 4-decimal rounding)
        # Around an outage a customer's register is interpolated between its last gasp and the reading
        # after the restoration (the consumption after the restoration is spread over the gap): those
        # windows are checked together (sum), the others one by one.
        gap = [(o["start"] - 900, -(-o["end"] // 900) * 900) for o in outages
               if set(o["params"]["meters"]) & set(truth["customers"])]
        compared = 0
        for start, balance in sorted(by_start.items()):
            window = windows[start]
            in_gap = any(lo < start + 900 and start < hi for lo, hi in gap)
            if in_gap:
                continue
            assert balance["losses"] == pytest.approx(window["losses_kWh"], abs=tolerance), (sid, window["start"])
            assert balance["energyDelivered"] == pytest.approx(window["delivered_net_kWh"], abs=tolerance)
            assert balance["completeness"] == 1.0 and not balance["estimated"]
            assert balance["metersExpected"] == balance["metersReported"] == n_customers
            if window["loss_pct"] is not None and window["losses_kWh"] > 0.1:
                # the rate itself, where a window's energy makes the 1-Wh resolution small against it
                assert balance["lossesPercent"] == pytest.approx(window["loss_pct"], abs=0.1)
            compared += 1
        assert compared >= len(by_start) - 4 * len(gap)
        # over the whole run the boundaries telescope: the total losses match within one window's tolerance
        total = sum(b["losses"] for b in by_start.values())
        expected = sum(windows[s]["losses_kWh"] for s in by_start)
        assert total == pytest.approx(expected, abs=tolerance + 0.0001 * len(by_start))
        # the injected rate over the run: losses / energy into the LV network (substation + PV injection)
        fed = sum(b["energyDelivered"] + b["energyProduced"] for b in by_start.values())
        rate = next(i["params"]["rate_pct"] for i in pilot_run.injected("losses") if i["target"] == sid)
        assert 100 * total / fed == pytest.approx(rate, abs=0.02), sid
        for lo, hi in gap:  # during the outage the silent customer is missing: estimated, incomplete
            inside = [b for s, b in by_start.items() if lo + 900 <= s and s + 900 <= hi - 900]
            assert inside and all(b["estimated"] and b["completeness"] < 1.0 for b in inside)
        # the broker holds the latest balance as an EnergyBalance entity
        entity = next(e for e in pilot_run.entities(pilot, "EnergyBalance") if e["id"].endswith(f":{sid}"))
        last = windows[max(by_start)]
        assert _epoch(entity["dateObservedFrom"]["value"]) == max(by_start)
        assert entity["losses"]["value"] == pytest.approx(last["losses_kWh"], abs=tolerance)


# -- district heating and replacements (injected too) -----------------------------------------------------------
def test_the_injected_low_delta_t_and_meter_replacements_are_found(pilot_run: PilotRun) -> None:
    anomalies = [e for e in pilot_run.entities("turin", "Anomaly") if ":lowDeltaT:" in e["id"]]
    for injected in pilot_run.injected("low_delta_t"):
        (found,) = [a for a in anomalies if f":{injected['target']}:" in a["id"]]
        # the alarm's first interval: the first 15 min whose readings carry the low ΔT (readings every 15 min)
        first = int(found["id"].rsplit(":", 1)[1])
        assert injected["start"] - 900 <= first <= injected["start"] + 900
        assert all(b["measuredValue"] < 20.0 for b in found["thresholdBreach"]["value"])
    assert len(anomalies) == len(pilot_run.injected("low_delta_t"))
    kinds = {"energy_Wh": "SmartMeteringObservation", "volume_l": "WaterConsumptionObserved"}
    for replaced in pilot_run.truth["replacements"]:
        meter = f"urn:ngsi-ld:{kinds[replaced['quantity']]}:{replaced['meter']}"
        periods = pilot_run.api("turin", f"/v1/meters/{meter}/consumption", resolution="PT15M",
                                fromDate=pilot_run.truth["start"], toDate=pilot_run.truth["end"])["periods"]
        assert len(periods) > 200
        # the register restarts at 0: not a negative or huge consumption, an estimate across the change
        flagged = [p for p in periods if p["estimated"]]
        assert flagged and all(_epoch(p["from"]) - 900 <= replaced["epoch"] <= _epoch(p["to"]) + 900 for p in flagged)
        values = sorted(p["consumption"] for p in periods)
        assert values[0] >= 0 and values[-1] < 20 * max(values[len(values) // 2], 1e-3)
        # against the truth: the register increases the meter made over the periods the service computed,
        # across the replacement the old register's last increase (then the new one starts at 0). Only the
        # period across the change is estimated (from the meter's rate), so the totals differ by less than
        # one period's consumption; a change read as a roll-over would add the distance to a power of ten.
        quantity = replaced["quantity"]
        samples = pilot_run.truth["heat" if quantity == "energy_Wh" else "water"][replaced["meter"]]
        lo, hi = _epoch(periods[0]["from"]), _epoch(periods[-1]["to"])
        inside = [x for x in samples if lo <= x["time"] <= hi]
        assert inside[0]["time"] == lo and inside[-1]["time"] == hi  # on-clock readings on the bounds
        increases = [(b[quantity] - a[quantity] if b["time"] != replaced["epoch"]
                      else replaced["old_register"] - a[quantity] + b[quantity]) / 1000.0  # kWh, m³
                     for a, b in itertools.pairwise(inside)]
        assert replaced["epoch"] in {x["time"] for x in inside} and min(increases) >= 0
        served = sum(p["consumption"] for p in periods)
        assert served == pytest.approx(sum(increases), abs=max(increases) + 1e-5 * len(periods))
        assert sum(1 for p in periods if p["estimated"]) <= 2
