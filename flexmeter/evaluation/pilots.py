"""`flexmeter bench e2e --workload pilots`: the Turin and Malmö pilots' mix through the simulator's emitters.

The same meters as the full-scale pilots, scaled by ``--scale`` (docs/simulator.md: 1 = 5,000 Turin buildings
with an M-Bus heat meter (IREN concentrator uplinks), a wM-Bus water meter and an ST-I DLMS meter, their
substations, 100 Midori NIALM sensors over AMQP, an ENNOVA hub over HTTPS; 1,000 Malmö E350 with their
substations and district-heat meters: ~640 readings/s), generated with fresh apikeys and tenants,
provisioned with ``flexmeter provision apply`` (groups, devices, topology, the orion_config subscriptions)
and run in real time (sim time = the wall clock, so a reading's observation time is its emission time).
No injections: this measures the pipeline, tests/simulator/test_detections.py checks the analytics.

Counted per hop as the Connode workload (docs/evaluation.md), with these differences: the agent's counters
are every family's; the time series hop is the distinct (meter, second) rows of the four reading types;
the broker hop counts the local receiver's distinct (entity, TimeInstant) with ``--receiver all``, else the
agent's 2xx; latency to the time series is polled for 20 Malmö E350 probe meters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from flexmeter.evaluation.errors import EvaluationError
from flexmeter.evaluation.hops import timeseries_counts
from flexmeter.evaluation.stack import Endpoints
from flexmeter.simulator.emitters import AmqpEmitter, Emitter, HttpEmitter, MqttEmitter
from flexmeter.simulator.fleet import Fleet, load_fleet
from flexmeter.simulator.generate import pilot_inventory, tag_inventory
from flexmeter.simulator.model import Emission, Simulation
from flexmeter.simulator.runner import Runner

PILOTS = ("turin", "malmo")
FAMILIES = ("mbus", "dlms", "connode", "midori", "ennova")
#: reading entity types and the attribute every reading of that type carries (counted in the time series)
READING_TYPES = {"ACMeasurement": "totalActivePower", "ThreePhaseAcMeasurement": "totalActiveEnergyImport",
                 "SmartMeteringObservation": "totalConsumption", "WaterConsumptionObserved": "waterConsumption"}
PROBE_TYPE, PROBE_ATTR = "ACMeasurement", "totalActivePower"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PilotsWorkload:
    """The generated pilots of one run: inventories on disk, their tenants, the simulated fleet."""

    scale: float
    seed: int
    directory: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    inventories: dict[str, Path] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    fleet: Fleet = field(default_factory=Fleet)

    @property
    def midori_queue(self) -> str:
        return f"bench-e2e-midori-{self.tag}"

    def write(self) -> PilotsWorkload:
        """Tagged inventories (apikeys and tenants unique to this run: the MQTT broker may be shared)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for pilot in PILOTS:
            document, keys = pilot_inventory(pilot, self.scale, self.seed, f"{pilot}.keys")
            tenant: dict[str, Any] = tag_inventory(document, self.tag)["tenants"][0]
            self.services[pilot] = tenant["service"]
            (self.directory / f"{pilot}.keys").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
            path = self.directory / f"{pilot}.yaml"
            path.write_text(yaml.safe_dump(document, sort_keys=False))
            self.inventories[pilot] = path
            self.fleet.extend(load_fleet(path))
        return self

    def headers(self, pilot: str, path: str | None = None) -> dict[str, str]:
        return {"Fiware-Service": self.services[pilot], "Fiware-ServicePath": path or f"/{pilot}/#"}

    def probe_ids(self, count: int) -> list[str]:
        meters = [m for m in self.fleet.meters if m.role == "e350"]
        step = max(1, len(meters) // max(1, count))
        return [f"urn:ngsi-ld:{PROBE_TYPE}:{m.id}" for m in meters[::step][:count]]


def provision(workload: PilotsWorkload, endpoints: Endpoints, receiver_url: str,
              receiver_ids: list[str] | None) -> None:
    """``flexmeter provision apply`` of each inventory (the orion_config subscriptions to the time series
    and the service), then the local receiver's subscription per tenant."""
    for pilot, path in workload.inventories.items():
        done = subprocess.run([sys.executable, "-m", "flexmeter", "provision", "apply", str(path), "--ngsi-url",
                               endpoints.ngsi_url, "--iota-url", endpoints.iota_url, "--ql-url", endpoints.ql_url,
                               "--var", f"SERVICE_URL={endpoints.service_url}", "--json", "--quiet"],
                              capture_output=True, text=True, timeout=600, cwd=ROOT)
        if done.returncode != 0:
            raise EvaluationError(f"provisioning the {pilot} pilot failed: {(done.stdout + done.stderr)[-600:]}")
        ours = [i for i in receiver_ids or [] if any(f":{m.id}" == i[-len(m.id) - 1:] for m in workload.fleet.meters
                                                     if m.pilot == pilot)]
        if receiver_ids is not None and not ours:
            continue
        entities = ([{"idPattern": ".*", "type": t} for t in READING_TYPES] if receiver_ids is None
                    else [{"id": i, "type": PROBE_TYPE} for i in ours])
        body = {"description": "flexmeter bench e2e: readings' arrival in the broker",
                "subject": {"entities": entities, "condition": {"attrs": []}},
                "notification": {"http": {"url": receiver_url}, "attrs": ["TimeInstant"],
                                 "attrsFormat": "normalized"}}
        response = requests.post(f"{endpoints.ngsi_url}/v2/subscriptions", headers=workload.headers(pilot),
                                 json=body, timeout=30)
        if response.status_code >= 300:
            raise EvaluationError(f"the receiver's subscription: {response.status_code} {response.text[:300]}")


class _Logged(Emitter):
    """An emitter that also notes each reading's observation time (ms), in emission order (latencies)."""

    def __init__(self, inner: Emitter, times_ms: list[int]) -> None:
        super().__init__()
        self.inner, self.times_ms = inner, times_ms
        self.counts = inner.counts

    def send(self, emission: Emission) -> None:
        self.inner.send(emission)
        self.times_ms.extend([emission.at * 1000] * emission.readings)

    def close(self, timeout: float = 30.0) -> None:
        self.inner.close(timeout)


@dataclass
class PilotsRun:
    """What was sent: the runner's summary and, per reading, its observation time (ms) in emission order."""

    summary: dict[str, Any]
    times_ms: list[int]
    started: float
    ended: float

    @property
    def count(self) -> int:
        return int(self.summary["readings_delivered"])


def open_emitters(workload: PilotsWorkload, mqtt_url: str, amqp_url: str, south_url: str,
                  times_ms: list[int]) -> dict[str, Emitter]:
    """MQTT (M-Bus uplinks, DLMS, Connode), AMQP (Midori), HTTP (ENNOVA), noting every reading's time."""
    return {
        "mqtt": _Logged(MqttEmitter(mqtt_url, client_id=f"flexmeter-e2e-{workload.tag}"), times_ms),
        "amqp": _Logged(AmqpEmitter(amqp_url, (workload.midori_queue,)), times_ms),
        "http": _Logged(HttpEmitter(south_url), times_ms),
    }


def run_pilots(workload: PilotsWorkload, emitters: dict[str, Emitter], times_ms: list[int], *,
               duration: float) -> PilotsRun:
    """The pilots in real time for ``duration`` s; returns once everything sent is acknowledged (MQTT
    PUBACK, AMQP confirm, HTTP 2xx: the emitters' ``close``)."""
    start = int(time.time()) + 1
    time.sleep(max(0.0, start - time.time()))  # sim second t is sent at wall second t: emission = observation
    sim = Simulation(workload.fleet, workload.seed, start, int(duration), schedule=[],
                     midori_queue=workload.midori_queue)
    runner = Runner(sim, emitters, speed=1.0, duration=int(duration), progress_every=0)
    started = time.time()
    summary = runner.run()
    if summary["readings_failed"] or summary["readings_sent"] != summary["readings_delivered"]:
        raise EvaluationError(f"the transports did not take every reading: {json.dumps(summary['transports'])}")
    return PilotsRun(summary, times_ms, started, time.time())


def timeseries_rows(ql_url: str, workload: PilotsWorkload, session: requests.Session | None = None) -> int:
    """Rows of the pilots' reading entities in the time series (every tenant, every reading type)."""
    http = session or requests.Session()
    scopes = sorted({(m.pilot, m.service_path) for m in workload.fleet.meters})  # queries name exact paths
    return sum(sum(timeseries_counts(ql_url, workload.headers(pilot, path), entity_type, attr, http).values())
               for pilot, path in scopes for entity_type, attr in READING_TYPES.items())


def timeseries_distinct_rows(ql_url: str, workload: PilotsWorkload, session: requests.Session | None = None) -> int:
    """Distinct (meter, second) rows of the pilots' reading entities: QuantumLeap's ``aggrMethod=count`` by
    ``aggrPeriod=second``, one bucket per observation. A reading stored twice (QuantumLeap keeps a redelivered
    notification twice) is one bucket, so it cannot hide another meter's missing row, as a total would.
    Two readings of one meter in the same second would count once (shown as a loss, never hidden): the pilots'
    meters read at most once a second."""
    http = session or requests.Session()
    total = 0
    for pilot, path in sorted({(m.pilot, m.service_path) for m in workload.fleet.meters}):
        for entity_type, attr in READING_TYPES.items():
            response = http.get(f"{ql_url}/v2/types/{entity_type}/attrs/{attr}", headers=workload.headers(pilot, path),
                                timeout=300, params={"aggrMethod": "count", "aggrPeriod": "second", "limit": "10000"})
            if response.status_code == 404:
                continue
            response.raise_for_status()
            total += sum(len(entity.get("index") or []) for entity in response.json().get("entities", []))
    return total


def delete_queue(amqp_url: str, queue: str) -> None:
    """The run's Midori queue is the run's own: remove it (best effort)."""
    try:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            connection.channel().queue_delete(queue)
        finally:
            connection.close()
    except Exception:  # cleanup only: the figures are taken; a leftover queue is harmless
        return


def environment(workload: PilotsWorkload) -> dict[str, str]:
    """The embedded agent's environment: this run's Midori queue."""
    return {"FLEXMETER_MIDORI_QUEUE": workload.midori_queue, "FLEXMETER_LOG_LEVEL": os.environ.get(
        "FLEXMETER_LOG_LEVEL", "WARNING")}
