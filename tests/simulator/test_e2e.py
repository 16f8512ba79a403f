"""End to end: a generated inventory provisioned with `flexmeter provision apply`, the agents, the embedded
broker, and the simulator at high speed through the real Mosquitto and RabbitMQ: every reading sent is decoded
by the agent, nothing is dead-lettered, and every meter is an entity in the broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pika
import requests
import yaml

from flexmeter.simulator.fleet import load_fleet
from flexmeter.simulator.generate import pilot_inventory
from tests.support.processes import FlexmeterProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def _write_tagged_inventory(directory: Path, pilot: str, tag: str) -> Path:
    """A tiny pilot inventory whose apikeys carry ``tag`` (the MQTT broker is shared by parallel tests)."""
    document, keys = pilot_inventory(pilot, 0.002, 3, f"{pilot}.keys")
    tenant: dict[str, Any] = document["tenants"][0]
    for group in tenant["groups"]:
        group["apikey"] = f"{group['apikey']}-{tag}"
    for meter in tenant["meters"]:
        meter["group"] = f"{meter['group']}-{tag}"
    tenant["service"] = f"{tenant['service']}{tag}"
    tenant["subscriptions"] = []
    (directory / f"{pilot}.keys").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    path = directory / f"{pilot}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _metric(text: str, name: str) -> dict[str, float]:
    out = {}
    for match in re.finditer(rf'^{name}\{{family="([^"]+)"\}} (\S+)$', text, re.M):
        out[match.group(1)] = float(match.group(2))
    return out


def test_simulated_pilots_reach_the_broker_through_the_agents(broker_process: FlexmeterProcess, tmp_path: Path,
                                                              amqp_url: str) -> None:
    # an MQTT broker of our own: the agent subscribes to every apikey's topics, and other tests' meters on
    # the shared Mosquitto would be counted (or dead-lettered) here; no json family, so the shared RabbitMQ's
    # iotagent-json traffic is not bound to this agent's queue either
    mqtt = FlexmeterProcess(["mqtt-broker", "--port", str(free_port())]).start()
    mqtt_url = mqtt.url
    tag = uuid.uuid4().hex[:6]
    queue = f"sim-e2e-midori-{tag}"
    inventories = [_write_tagged_inventory(tmp_path, pilot, tag) for pilot in ("turin", "malmo")]
    south = free_port()
    agent = FlexmeterProcess(
        ["agent", "mbus", "dlms", "connode", "midori", "ennova", "--north-port", "0", "--south-port", str(south), "--ngsi-url", broker_process.url,
         "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--data-dir", str(tmp_path / "agent"), "--linger", "0.01"],
        env={"FLEXMETER_MIDORI_QUEUE": queue}).start()
    try:
        for path in inventories:
            done = subprocess.run([sys.executable, "-m", "flexmeter", "provision", "apply", str(path), "--ngsi-url",
                                   broker_process.url, "--iota-url", agent.url, "--json", "--quiet"],
                                  capture_output=True, text=True, timeout=120, cwd=ROOT)
            assert done.returncode == 0, done.stdout + done.stderr
        time.sleep(1.0)  # MQTT subscriptions and the Midori queue consumer are up before the first message
        args = ["simulate", "--pilot", "all", "--speed", "0", "--duration", "180", "--seed", "5", "--start",
                "2026-11-27T10:00:00Z", "--mqtt-url", mqtt_url, "--amqp-url", amqp_url, "--south-url",
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
        mbus_meters = sum(m.role in ("heat_mbus", "water_wmbus") for p in inventories for m in load_fleet(p).meters)
        # the M-Bus family adds its silence watchdog's own readings (a meter provisioned but not yet heard)
        assert expected["mbus"] <= decoded.get("mbus", 0) <= expected["mbus"] + mbus_meters
        assert {k: int(decoded.get(k, 0)) for k in expected if k != "mbus"} == {
            k: v for k, v in expected.items() if k != "mbus"}
        assert not _metric(text, "iota_dead_lettered_total"), requests.get(f"{agent.url}/iot/deadletters").text
        fleet = load_fleet(inventories[0])
        fleet.extend(load_fleet(inventories[1]))
        for service in {m.service for m in fleet.meters}:
            entities = requests.get(f"{broker_process.url}/v2/entities", params={"limit": "1000", "attrs": "id"},
                                    headers={"Fiware-Service": service}, timeout=10).json()
            ids = {e["id"] for e in entities}
            for meter in (m for m in fleet.meters if m.service == service):
                assert any(i.endswith(":" + meter.id) or i.endswith(":" + meter.device_id) for i in ids), meter.id
    finally:
        agent.stop()
        mqtt.stop()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().queue_delete(queue)
        connection.close()
