"""`flexmeter agent connode` end to end: gateway JSON on the real Mosquitto -> entities; the E350 breaker."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from flexmeter.iot_agents.core.mqtt import host_port
from tests.iot_agents.connode.test_connode_decoder import EXAMPLE
from tests.iot_agents.core.conftest import (
    AgentFactory,
    get_entity,
    must_get_entity,
    provision,
    publish_all,
    wait_for,
)
from tests.support.processes import FlexmeterProcess


class FakeGateway:
    """Receives breaker commands and answers with a cmdexe message in its next uplink document."""

    def __init__(self, mqtt_url: str, apikey: str) -> None:
        self.commands: list[dict[str, object]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:8]}")
        self.apikey = apikey
        self.client.on_connect = lambda c, u, f, r, p=None: c.subscribe(f"connode/{apikey}/+/cmd", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        host, port = host_port(mqtt_url)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        self.commands.append(command)
        reply = {"gateway": "gw1", "messages": [{"device": command["device"], "type": "cmdexe", "values": {
            "command": "breaker", "status": "OK", "info": f"breaker {command['action']}ed"}}]}
        client.publish(f"connode/{self.apikey}/gw1/up", json.dumps(reply), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_gateway_document_to_entities_and_breaker_command(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mqtt_url: str, tenant: dict[str, str],
        tmp_path: Path) -> None:
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "connode", mqtt_url=mqtt_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/connode", "timestamp": True}],
              [{"device_id": "E350-00012345", "protocol": "connode", "entity_type": "ACMeasurement",
                "commands": [{"name": "breaker", "type": "command"}]}])
    gateway = FakeGateway(mqtt_url, key)
    try:
        publish_all(mqtt_url, [(f"connode/{key}/gw1/up", json.dumps({**EXAMPLE, "messages": EXAMPLE["messages"][:5]}))])
        meter = wait_for(lambda: (e := get_entity(ngsi, tenant, "ACMeasurement:E350-00012345")) and
                         "totalActiveEnergyImport" in e and e)
        assert meter["totalActiveEnergyImport"]["value"] == 12345.678
        assert meter["totalActiveEnergyImport"]["metadata"]["unitCode"]["value"] == "KWH"
        assert meter["activePower"]["value"] == {"L1": 230, "L2": 410, "L3": 120}
        alert = wait_for(lambda: get_entity(ngsi, tenant, "Alert:E350-00012346:lastGasp"))
        assert alert["type"] == "Alert" and alert["subCategory"]["value"] == "powerOutage"
        assert must_get_entity(ngsi, tenant, "ACMeasurement:E350-00012346")["status"]["value"] == "powerOutage"
        substation = get_entity(ngsi, tenant, "ThreePhaseAcMeasurement:ECH-SUB-1")
        assert substation is not None and substation["totalActivePower"]["value"] == 117.0
        heat = get_entity(ngsi, tenant, "SmartMeteringObservation:DH-0042")
        assert heat is not None and heat["meterType"]["value"] == "Heat"

        wait_for(lambda: requests.get(f"{ngsi}/v2/subscriptions", headers=tenant, timeout=5).json())
        requests.post(f"{ngsi}/v2/entities/ACMeasurement:E350-00012345/attrs", headers=tenant, timeout=5,
                      json={"breaker": {"type": "command", "value": "disconnect"}}).raise_for_status()
        wait_for(lambda: must_get_entity(ngsi, tenant, "ACMeasurement:E350-00012345")["breaker_status"]["value"]
                 == "OK")
        meter = get_entity(ngsi, tenant, "ACMeasurement:E350-00012345")
        assert meter is not None and meter["breaker_info"]["value"] == "breaker disconnected"
        assert gateway.commands == [{"device": "E350-00012345", "command": "breaker", "action": "disconnect"}]

        requests.post(f"{ngsi}/v2/entities/ACMeasurement:E350-00012345/attrs", headers=tenant, timeout=5,
                      json={"breaker": {"type": "command", "value": "explode"}}).raise_for_status()
        wait_for(lambda: must_get_entity(ngsi, tenant, "ACMeasurement:E350-00012345")["breaker_status"]["value"]
                 == "ERROR")
        meter = get_entity(ngsi, tenant, "ACMeasurement:E350-00012345")
        assert meter is not None and "connect, disconnect, status" in meter["breaker_info"]["value"]
    finally:
        gateway.close()


def test_an_unknown_meter_of_a_gateway_document_is_dead_lettered_alone(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mqtt_url: str, tenant: dict[str, str]) -> None:
    """autoprovision false: the gateway's other meters go on; the unknown one's own message is the dead letter."""
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "connode", mqtt_url=mqtt_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/connode", "autoprovision": False}],
              [{"device_id": "E350-00012345", "protocol": "connode", "entity_type": "ACMeasurement"},
               {"device_id": "DH-0042", "protocol": "connode", "entity_type": "SmartMeteringObservation"}])
    readings = [m for m in EXAMPLE["messages"] if m["device"] in ("E350-00012345", "ECH-SUB-1", "DH-0042")
                and m.get("type", "reading") == "reading"]
    publish_all(mqtt_url, [(f"connode/{key}/gw1/up", json.dumps({**EXAMPLE, "messages": readings}))])
    meter = wait_for(lambda: get_entity(ngsi, tenant, "ACMeasurement:E350-00012345"))
    assert meter["totalActiveEnergyImport"]["value"] == 12345.678
    heat = wait_for(lambda: get_entity(ngsi, tenant, "SmartMeteringObservation:DH-0042"))
    assert heat["meterType"]["value"] == "Heat"

    letters = wait_for(lambda: (r := requests.get(f"{agent.url}/iot/deadletters", headers=tenant, timeout=5).json())
                       and r["count"] and r)
    assert letters["count"] == 1
    letter = letters["deadLetters"][0]
    assert letter["error"] == "DEVICE_NOT_FOUND" and "ECH-SUB-1" in letter["reason"]
    assert json.loads(letter["raw"]) == next(m for m in readings if m["device"] == "ECH-SUB-1")
    assert get_entity(ngsi, tenant, "ThreePhaseAcMeasurement:ECH-SUB-1") is None
