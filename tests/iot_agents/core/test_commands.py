"""Commands in notification mode: broker subscription -> MQTT /cmd -> device /cmdexe -> <cmd>_status/_info."""

from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from flexmeter.iot_agents.core.mqtt import host_port
from tests.iot_agents.core.conftest import AgentFactory, get_entity, must_get_entity, provision, wait_for
from tests.support.processes import FlexmeterProcess


class FakeDevice:
    """A device on the real Mosquitto: answers the commands it is told to answer, ignores the others."""

    def __init__(self, mqtt_url: str, apikey: str, device_id: str, answers: dict[str, object]) -> None:
        self.received: list[dict[str, object]] = []
        self.subscribed = threading.Event()
        self.answers = answers
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")
        self.topic = f"/{apikey}/{device_id}"
        self.client.on_connect = lambda c, u, f, r, p=None: c.subscribe(f"{self.topic}/cmd", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        host, port = host_port(mqtt_url)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        payload = json.loads(msg.payload)
        self.received.append(payload)
        for command in payload:
            if command in self.answers:
                client.publish(f"{self.topic}/cmdexe", json.dumps({command: self.answers[command]}), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_command_round_trip_and_timeout(agent_factory: AgentFactory, module_broker: FlexmeterProcess,
                                        mqtt_url: str, tenant: dict[str, str]) -> None:
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "json", mqtt_url=mqtt_url, extra=("--command-timeout", "1.5"))
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Switch"}],
              [{"device_id": "sw1", "protocol": "IoTA-JSON",
                "commands": [{"name": "ping", "type": "command"}, {"name": "reboot", "type": "command"}]}])
    device = FakeDevice(mqtt_url, key, "sw1", {"ping": "pong"})
    try:
        entity = wait_for(lambda: get_entity(ngsi, tenant, "Switch:sw1"))
        assert entity["ping_status"]["value"] == "UNKNOWN"
        wait_for(lambda: requests.get(f"{ngsi}/v2/subscriptions", headers=tenant, timeout=5).json())

        update = requests.post(f"{ngsi}/v2/entities/Switch:sw1/attrs", headers=tenant, timeout=5,
                               json={"ping": {"type": "command", "value": "hello"}})
        assert update.status_code == 204, update.text
        wait_for(lambda: must_get_entity(ngsi, tenant, "Switch:sw1")["ping_status"]["value"] == "OK")
        entity = get_entity(ngsi, tenant, "Switch:sw1")
        assert entity is not None and entity["ping_info"]["value"] == "pong"
        assert {"ping": "hello"} in device.received

        requests.post(f"{ngsi}/v2/entities/Switch:sw1/attrs", headers=tenant, timeout=5,
                      json={"reboot": {"type": "command", "value": "now"}}).raise_for_status()
        wait_for(lambda: must_get_entity(ngsi, tenant, "Switch:sw1")["reboot_status"]["value"] == "PENDING",
                 timeout=5)
        wait_for(lambda: must_get_entity(ngsi, tenant, "Switch:sw1")["reboot_status"]["value"] == "ERROR",
                 timeout=10)
        entity = get_entity(ngsi, tenant, "Switch:sw1")
        assert entity is not None and "no reply" in entity["reboot_info"]["value"]
    finally:
        device.close()
