"""End to end: a generated inventory provisioned with `flexmeter provision apply`, the agents, the embedded
broker, and the simulator at high speed through the real Mosquitto and RabbitMQ: every reading sent is
acknowledged and decoded, none is dead-lettered, and every meter's entity holds its last reading's time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
import yaml

from flexmeter.iot_agents.mbus import decode_mbus, decode_wmbus
from flexmeter.iot_agents.mbus.uplink import parse_json_uplink
from flexmeter.simulator.fleet import Fleet, load_fleet
from flexmeter.simulator.generate import pilot_inventory, tag_inventory
from flexmeter.simulator.model import Simulation
from tests.support.processes import FlexmeterProcess, free_port

# These tests publish uplinks on the shared Mosquitto/RabbitMQ, where every agent under test subscribes
# to all apikeys (and one restarts RabbitMQ): one xdist worker runs them in turn, so counts stay exact.
pytestmark = pytest.mark.xdist_group("shared-brokers")

ROOT = Path(__file__).resolve().parents[2]
START, DURATION = "2026-11-27T10:00:00Z", 180


def _write_tagged_inventory(directory: Path, pilot: str, tag: str) -> Path:
    """A tiny pilot inventory whose apikeys carry ``tag`` (the MQTT broker is shared by parallel tests)."""
    document, keys = pilot_inventory(pilot, 0.002, 3, f"{pilot}.keys")
    tenant: dict[str, Any] = tag_inventory(document, tag)["tenants"][0]
    tenant["subscriptions"] = []
    (directory / f"{pilot}.keys").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    path = directory / f"{pilot}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _last_readings(fleet: Fleet) -> dict[str, int]:
    """Meter id -> the time of the last reading it sends in the test's run (the model is deterministic)."""
    sim = Simulation(fleet, 5, _epoch(START), DURATION)
    by_serial: dict[str | None, str] = {m.serial: m.id for m in fleet.meters if m.serial}
    by_device = {m.device_id: m.id for m in fleet.meters}
    last: dict[str, int] = {}
    for t in range(sim.start, sim.start + DURATION):
        for e in sim.step(t):
            if e.family in ("mbus", "wmbus"):
                for frame in parse_json_uplink(e.payload):
                    tel = decode_mbus(frame.data) if frame.kind == "mbus" else decode_wmbus(frame.data)
                    last[by_serial[tel.id]] = t
            elif e.family == "dlms":
                last[by_device[e.channel.rsplit("/", 1)[1]]] = t
            elif e.family == "connode":
                for message in json.loads(e.payload)["messages"]:
                    last[by_device[message["device"]]] = _epoch(message["time"])
            elif e.family == "midori":
                document = json.loads(e.payload)
                last[by_device[document["sensor"]]] = _epoch(document["samples"][-1]["ts"])
            else:
                for device in json.loads(e.payload)["devices"]:
                    last[by_device[device["id"]]] = _epoch(device["samples"][-1]["ts"])
    return last


def _metric(text: str, name: str) -> dict[str, float]:
    out = {}
    for match in re.finditer(rf'^{name}\{{family="([^"]+)"\}} (\S+)$', text, re.M):
        out[match.group(1)] = float(match.group(2))
    return out


def test_simulated_pilots_reach_the_broker_through_the_agents(broker_process: FlexmeterProcess, tmp_path: Path,
                                                              mqtt_url: str, amqp_url: str) -> None:
    # The agent subscribes to every apikey's topics on the shared Mosquitto, so other tests' meters may reach
    # it too (the embedded amqtt broker cannot isolate us: it speaks MQTT 3.1.1, the agent MQTT 5). Hence:
    # our apikeys carry a tag, decoded counts are "at least ours", dead letters are filtered by our tag.
    tag = uuid.uuid4().hex[:6]
    queue = f"sim-e2e-midori-{tag}"
    inventories = [_write_tagged_inventory(tmp_path, pilot, tag) for pilot in ("turin", "malmo")]
    south = free_port()
    agent = FlexmeterProcess(
        ["agent", "mbus", "dlms", "connode", "midori", "ennova", "--north-port", "0", "--south-port", str(south),
         "--ngsi-url", broker_process.url,
         "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--data-dir", str(tmp_path / "agent"), "--linger", "0.01"],
        env={"FLEXMETER_MIDORI_QUEUE": queue}).start()
    try:
        for path in inventories:
            done = subprocess.run([sys.executable, "-m", "flexmeter", "provision", "apply", str(path), "--ngsi-url",
                                   broker_process.url, "--iota-url", agent.url, "--json", "--quiet"],
                                  capture_output=True, text=True, timeout=120, cwd=ROOT)
            assert done.returncode == 0, done.stdout + done.stderr
        time.sleep(1.0)  # MQTT subscriptions and the Midori queue consumer are up before the first message
        args = ["simulate", "--pilot", "all", "--speed", "0", "--duration", str(DURATION), "--seed", "5",
                "--start", START, "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--south-url",
                f"http://127.0.0.1:{south}", "--midori-queue", queue, "--json", "--progress", "0",
                "--truth", str(tmp_path / "truth.json")]
        for path in inventories:
            args += ["--inventory", str(path)]
        done = subprocess.run([sys.executable, "-m", "flexmeter", *args], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        summary = json.loads(done.stdout)
        sent = json.loads((tmp_path / "truth.json").read_text())["sent"]["readings"]
        assert summary["readings_sent"] == summary["readings_delivered"] == sum(sent.values()) > 0
        expected = {"mbus": sent["mbus"] + sent["wmbus"], "dlms": sent["dlms"], "connode": sent["connode"],
                    "midori": sent["midori"], "ennova": sent["ennova"]}
        deadline = time.monotonic() + 45
        decoded: dict[str, float] = {}
        while time.monotonic() < deadline:
            text = requests.get(f"{agent.url}/metrics", timeout=5).text
            decoded = _metric(text, "iota_decoded_total")
            if all(decoded.get(k, 0) >= v for k, v in expected.items()) and not re.search(
                    r"^iota_outbox_depth\S* [1-9]", text, re.M):
                break
            time.sleep(0.5)
        # at least ours (the M-Bus family also counts its silence watchdog's readings; see the note above)
        assert all(decoded.get(k, 0) >= v for k, v in expected.items()), (decoded, expected)
        fleet = load_fleet(inventories[0])
        fleet.extend(load_fleet(inventories[1]))
        for service in {m.service for m in fleet.meters}:  # dead letters are listed per tenant
            dead = requests.get(f"{agent.url}/iot/deadletters", params={"limit": "1000"}, timeout=10,
                                headers={"Fiware-Service": service, "Fiware-ServicePath": "/#"}).json()
            assert dead["count"] == 0 and not dead["deadLetters"], dead
        last = _last_readings(fleet)  # the same run again, in memory: deterministic
        for service in {m.service for m in fleet.meters}:
            entities = requests.get(f"{broker_process.url}/v2/entities", params={"limit": "1000",
                                    "attrs": "TimeInstant"}, headers={"Fiware-Service": service}, timeout=10).json()
            stamps = {e["id"]: e.get("TimeInstant", {}).get("value") for e in entities}
            for meter in (m for m in fleet.meters if m.service == service):
                found = [v for k, v in stamps.items() if k.endswith(":" + meter.id) and ":Device:" not in k]
                if meter.id not in last:  # a 5-min meter whose turn did not come in these 3 minutes
                    assert not found, meter.id
                    continue
                assert len(found) == 1, meter.id
                assert _epoch(found[0]) == last[meter.id], meter.id  # its last reading is the entity's state
    finally:
        agent.stop()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete(queue)
        connection.close()
