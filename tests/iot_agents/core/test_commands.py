"""Commands in notification mode: broker subscription -> MQTT /cmd -> device /cmdexe -> <cmd>_status/_info."""

from __future__ import annotations

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from flexmeter.iot_agents.core.mqtt import host_port
from tests.iot_agents.core.conftest import AgentFactory, get_entity, must_get_entity, provision, south_url, wait_for
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
        assert device.received == [{"ping": "hello"}, {"reboot": "now"}]  # ping is not sent again with reboot
    finally:
        device.close()


def test_polling_commands_for_http_devices(agent_factory: AgentFactory, module_broker: FlexmeterProcess,
                                           tenant: dict[str, str]) -> None:
    """iotagent-json's polling: queued, fetched with getCmd=1 (DELIVERED), answered on /iot/json/commands."""
    ngsi = module_broker.url
    agent = agent_factory(ngsi, "json", extra=("--command-timeout", "1.5"))
    south = south_url(agent)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Valve", "autoprovision": False}],
              [{"device_id": "v1", "protocol": "IoTA-JSON", "transport": "HTTP",
                "commands": [{"name": "open", "type": "command"}, {"name": "close", "type": "command"}]}])
    ids = {"k": key, "i": "v1"}

    def status(command: str) -> str:
        return str(must_get_entity(ngsi, tenant, "Valve:v1")[f"{command}_status"]["value"])

    def command(name: str, value: object) -> None:
        requests.post(f"{ngsi}/v2/entities/Valve:v1/attrs", headers=tenant, timeout=5,
                      json={name: {"type": "command", "value": value}}).raise_for_status()

    wait_for(lambda: status("open") == "UNKNOWN")
    wait_for(lambda: requests.get(f"{ngsi}/v2/subscriptions", headers=tenant, timeout=5).json())
    nothing = requests.get(f"{south}/iot/json", params={**ids, "getCmd": "1"}, timeout=5)
    assert (nothing.status_code, nothing.json()) == (200, {})

    command("open", {"percent": 40})
    wait_for(lambda: status("open") == "PENDING")
    fetched = requests.get(f"{south}/iot/json", params={**ids, "getCmd": "1"}, timeout=5)
    assert (fetched.status_code, fetched.json()) == (200, {"open": {"percent": 40}})
    wait_for(lambda: status("open") == "DELIVERED")
    assert requests.get(f"{south}/iot/json", params={**ids, "getCmd": "1"}, timeout=5).json() == {}  # once
    result = requests.post(f"{south}/iot/json/commands", params=ids, json={"open": "opened to 40%"}, timeout=5)
    assert result.status_code == 200, result.text
    wait_for(lambda: status("open") == "OK")
    assert must_get_entity(ngsi, tenant, "Valve:v1")["open_info"]["value"] == "opened to 40%"

    # a measure POST with getCmd=1 carries the queued command back; no answer -> ERROR; never fetched -> ERROR
    command("close", "now")
    wait_for(lambda: status("close") == "PENDING")
    measure = requests.post(f"{south}/iot/json", params={**ids, "getCmd": "1"}, json={"flow": 3.5}, timeout=5)
    assert (measure.status_code, measure.json()) == (200, {"close": "now"})
    command("open", "again")
    wait_for(lambda: status("open") == "PENDING")
    entity = wait_for(lambda: (e := must_get_entity(ngsi, tenant, "Valve:v1"))["close_status"]["value"] == "ERROR"
                      and e["open_status"]["value"] == "ERROR" and e, timeout=10)
    assert entity["flow"]["value"] == 3.5
    assert entity["close_info"]["value"] == "no reply from the device within 1.5 s"
    assert entity["open_info"]["value"] == "not fetched by the device within 1.5 s"

    # the FIWARE errors
    unknown = requests.get(f"{south}/iot/json", params={"k": key, "i": "nobody", "getCmd": "1"}, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["name"] == "DEVICE_NOT_FOUND"
    no_group = requests.get(f"{south}/iot/json", params={"k": "nokey", "i": "v1", "getCmd": "1"}, timeout=5)
    assert no_group.status_code == 404 and no_group.json()["name"] == "DEVICE_GROUP_NOT_FOUND"
    bare = requests.get(f"{south}/iot/json", params=ids, timeout=5)
    assert bare.status_code == 400 and bare.json()["name"] == "MANDATORY_PARAMS_NOT_FOUND"
    # a measure in the query (iotagent-json's GET ...&d=), answered with the (now no) commands
    in_query = requests.get(f"{south}/iot/json", params={**ids, "d": '{"flow": 4.5}', "getCmd": "1"}, timeout=5)
    assert (in_query.status_code, in_query.json()) == (200, {})
    wait_for(lambda: must_get_entity(ngsi, tenant, "Valve:v1")["flow"]["value"] == 4.5)
