"""`flexmeter up` on a machine without Mosquitto: the agent talks MQTT 3.1.1 to the embedded broker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.processes import FlexmeterProcess, free_port

HEADERS = {"fiware-service": "embeddedmqtt", "fiware-servicepath": "/"}


def test_agent_receives_through_the_embedded_mqtt_broker(tmp_path: Path) -> None:
    mqtt_port = free_port()
    with FlexmeterProcess(["mqtt-broker", "--port", str(mqtt_port)]), \
            FlexmeterProcess(["broker", "--port", "0", "--db", str(tmp_path / "broker.db")]) as broker, \
            FlexmeterProcess(["agent", "json", "--north-port", "0", "--south-port", "0", "--coap-port", "none",
                              "--amqp-url", "none", "--ngsi-url", broker.url,
                              "--mqtt-url", f"mqtt://127.0.0.1:{mqtt_port}", "--data-dir", str(tmp_path / "agent")],
                             ) as agent:
        group = {"services": [{"apikey": "embkey", "entity_type": "Thing", "resource": "", "autoprovision": True}]}
        assert requests.post(f"{agent.url}/iot/services", json=group, headers=HEADERS, timeout=10).status_code == 201
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the MQTT session (3.1.1 fallback) may still be connecting
            health = requests.get(f"{agent.url}/health", timeout=10).json()
            if health.get("mqtt") is True:
                break
            time.sleep(0.2)
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="emb-pub")
        publisher.connect("127.0.0.1", mqtt_port)
        publisher.loop_start()
        publisher.publish("/json/embkey/dev1/attrs", json.dumps({"t": 21.5}), qos=1).wait_for_publish(10)
        publisher.loop_stop()
        publisher.disconnect()
        entity = None
        while time.monotonic() < deadline:
            response = requests.get(f"{broker.url}/v2/entities/Thing:dev1", headers=HEADERS, timeout=10)
            if response.status_code == 200:
                entity = response.json()
                break
            time.sleep(0.2)
        assert entity is not None, agent.log()
        assert entity["t"]["value"] == 21.5
