"""Readings from the real Mosquitto, RabbitMQ and HTTP to the embedded broker: mapping, dead letters,
broker outages and a killed agent, with nothing lost."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from tests.iot_agents.core.conftest import (
    AgentFactory,
    count_entities,
    get_entity,
    must_get_entity,
    provision,
    publish_all,
    south_url,
    wait_for,
)
from tests.support.processes import FlexmeterProcess, free_port


def _metric(north: str, name: str, family: str = "json") -> float:
    text = requests.get(f"{north}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'{name}{{family="{family}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.xdist_group("shared-brokers")  # uses RabbitMQ, which a midori test restarts
def test_mqtt_http_and_amqp_measures_become_entity_attributes(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mqtt_url: str, amqp_url: str,
        tenant: dict[str, str]) -> None:
    agent = agent_factory(module_broker.url, "json", mqtt_url=mqtt_url, amqp_url=amqp_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Room", "autoprovision": False,
                                   "static_attributes": [{"name": "site", "type": "Text", "value": "Malmö"}]}],
              [{"device_id": "r1", "timezone": "Europe/Stockholm", "attributes": [
                  {"object_id": "p", "name": "power", "type": "Number", "expression": "p * 1000",
                   "metadata": {"unitCode": {"type": "Text", "value": "WTT"}}}]}])
    ngsi = module_broker.url
    # An array is applied oldest first: the 10:00 reading must win over the 09:00 one that follows it.
    publish_all(mqtt_url, [(f"/json/{key}/r1/attrs", json.dumps([
        {"p": 1.5, "TimeInstant": "2026-11-27T10:00:00"}, {"p": 1.2, "TimeInstant": "2026-11-27T09:00:00"}]))])
    entity = wait_for(lambda: get_entity(ngsi, tenant, "Room:r1"))
    assert entity["power"]["value"] == 1500
    assert entity["power"]["metadata"]["unitCode"]["value"] == "WTT"
    assert entity["TimeInstant"]["value"].startswith("2026-11-27T09:00:00")  # Stockholm is UTC+1 in November
    assert entity["site"]["value"] == "Malmö"

    response = requests.post(f"{south_url(agent)}/iot/json", params={"k": key, "i": "r1"},
                             json={"p": 2, "note": "via http"}, timeout=10)
    assert response.status_code == 200
    entity = wait_for(lambda: (e := get_entity(ngsi, tenant, "Room:r1")) and e["power"]["value"] == 2000 and e)
    assert entity["note"] == {"type": "Text", "value": "via http", "metadata": entity["note"]["metadata"]}

    # consuming means the queue is bound: a message published before that would be unroutable
    wait_for(lambda: requests.get(f"{agent.url}/health", timeout=5).json()["amqp"] is True)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    assert channel.queue_declare(f"flexmeter.iota.{_identity(agent)}", passive=True)
    channel.basic_publish("amq.topic", f".json.{key}.r1.attrs", json.dumps({"p": 3}).encode())
    connection.close()
    wait_for(lambda: must_get_entity(ngsi, tenant, "Room:r1")["power"]["value"] == 3000)

    unknown = requests.post(f"{south_url(agent)}/iot/json", params={"k": key, "i": "nobody"}, json={"p": 1},
                            timeout=10)
    assert unknown.status_code == 404 and unknown.json()["name"] == "DEVICE_NOT_FOUND"
    no_group = requests.post(f"{south_url(agent)}/iot/json", params={"k": "nokey", "i": "r1"}, json={"p": 1},
                             timeout=10)
    assert no_group.status_code == 404 and no_group.json()["name"] == "DEVICE_GROUP_NOT_FOUND"
    no_params = requests.post(f"{south_url(agent)}/iot/json", json={"p": 1}, timeout=10)
    assert no_params.status_code == 400 and no_params.json()["name"] == "MANDATORY_PARAMS_NOT_FOUND"
    assert _metric(agent.url, "iota_forwarded_total") >= 3
    assert _metric(agent.url, "iota_dead_lettered_total") == 2


def test_dead_letters_are_listed_to_their_own_tenant_only(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, tenant: dict[str, str]) -> None:
    agent = agent_factory(module_broker.url, "json")
    south = south_url(agent)
    tenant_b = {"Fiware-Service": f"{tenant['Fiware-Service']}b", "Fiware-ServicePath": "/other"}
    key_a, key_b = f"ka{uuid.uuid4().hex[:8]}", f"kb{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key_a, "entity_type": "Room"}])
    provision(agent.url, tenant_b, [{"apikey": key_b, "entity_type": "Room", "autoprovision": False}])
    for params, body in (({"k": key_a, "i": "r1"}, b'{"secret-of-a": '), ({"k": key_b, "i": "r1"}, b'{"b": 1}'),
                         ({"k": key_b, "i": "r2"}, b'{"secret-of-b": '), ({"k": "nobody", "i": "x"}, b'{"x": 1}')):
        response = requests.post(f"{south}/iot/json", params=params, data=body, timeout=10,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code in (400, 404), response.text  # committed to the dead letters before this

    def letters(headers: dict[str, str]) -> dict[str, Any]:
        response = requests.get(f"{agent.url}/iot/deadletters", headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    mine = letters(tenant)
    assert mine["count"] == 1 and [d["raw"] for d in mine["deadLetters"]] == ['{"secret-of-a": ']
    theirs = letters(tenant_b)
    assert theirs["count"] == 2
    assert {d["error"] for d in theirs["deadLetters"]} == {"DEVICE_NOT_FOUND", "WRONG_SYNTAX"}
    assert "secret-of-a" not in json.dumps(theirs) and "secret-of-b" not in json.dumps(mine)
    assert letters({**tenant_b, "Fiware-ServicePath": "/*"})["count"] == 2  # every path of the service
    assert letters({**tenant_b, "Fiware-ServicePath": "/elsewhere"})["count"] == 0
    assert letters({**tenant, "Fiware-Service": "nobody"})["count"] == 0  # the unknown apikey's: no tenant's
    for missing in ({}, {"Fiware-Service": tenant["Fiware-Service"]}, {"Fiware-ServicePath": "/malmo"}):
        response = requests.get(f"{agent.url}/iot/deadletters", headers=missing, timeout=5)
        assert response.status_code == 400 and response.json()["name"] == "MISSING_HEADERS", response.text
    health = requests.get(f"{agent.url}/health", timeout=5).json()
    assert health["deadLetters"] == 4 and health["deadLettersUnattributed"] == 1
    public = requests.get(f"{agent.url}/metrics", timeout=5).text + json.dumps(health)
    assert "secret-of" not in public and key_a not in public and tenant["Fiware-Service"] not in public


def _identity(agent: FlexmeterProcess) -> str:
    import hashlib

    data_dir = Path(agent.args[agent.args.index("--data-dir") + 1])
    return hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]


def test_malformed_payloads_are_dead_lettered_with_reason_and_bytes(
        agent_factory: AgentFactory, module_broker: FlexmeterProcess, mqtt_url: str, tenant: dict[str, str]) -> None:
    agent = agent_factory(module_broker.url, "json", mqtt_url=mqtt_url)
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Room"}])
    publish_all(mqtt_url, [(f"/json/{key}/r1/attrs", b'{"t": 21,'), (f"/json/{key}/r1/attrs", b"[1, 2]"),
                           (f"/json/{key}/r1/attrs", b"\xff\xfe"), (f"/json/{key}/r1/attrs", b'{"t": 22}')])
    wait_for(lambda: get_entity(module_broker.url, tenant, "Room:r1"))
    dead = wait_for(lambda: (d := requests.get(f"{agent.url}/iot/deadletters", headers=tenant,
                                               timeout=5).json())["count"] == 3 and d)
    reasons = [entry["reason"] for entry in dead["deadLetters"]]
    assert ("payload is not JSON: Expecting property name enclosed in double quotes at line 1 column 10 (char 9)"
            in reasons)
    assert "measure 0 is a int, not a JSON object" in reasons
    assert "payload is not UTF-8 (byte 0)" in reasons
    assert {"hex": "fffe"} in [entry["raw"] for entry in dead["deadLetters"]]
    assert dead["deadLetters"][0]["raw"] == '{"t": 21,'
    assert _metric(agent.url, "iota_dead_lettered_total") == 3


def test_broker_outage_then_back_loses_no_reading(
        agent_factory: AgentFactory, tmp_path: Path, mqtt_url: str, tenant: dict[str, str]) -> None:
    port = free_port()
    broker_dir = tmp_path / "b"
    broker_dir.mkdir()
    broker = FlexmeterProcess(["broker", "--port", str(port), "--db", str(broker_dir / "broker.db")]).start()
    ngsi = broker.url
    try:
        agent = agent_factory(ngsi, "json", mqtt_url=mqtt_url)
        key = f"k{uuid.uuid4().hex[:8]}"
        provision(agent.url, tenant, [{"apikey": key, "entity_type": "Meter"}])
        publish_all(mqtt_url, [(f"/json/{key}/m{i}/attrs", json.dumps({"e": i})) for i in range(50)])
        wait_for(lambda: count_entities(ngsi, tenant, "Meter") == 50)
        broker.stop()
        publish_all(mqtt_url, [(f"/json/{key}/m{i}/attrs", json.dumps({"e": i})) for i in range(50, 150)])
        wait_for(lambda: requests.get(f"{agent.url}/health", timeout=5).json()["outbox"] == 100)
        wait_for(lambda: _metric(agent.url, "iota_retried_total") > 0, timeout=10)
        time.sleep(3)  # the outage
        broker = FlexmeterProcess(["broker", "--port", str(port), "--db", str(broker_dir / "broker.db")]).start()
        wait_for(lambda: count_entities(ngsi, tenant, "Meter") == 150, timeout=30)
        assert must_get_entity(ngsi, tenant, "Meter:m149")["e"]["value"] == 149
        assert requests.get(f"{agent.url}/health", timeout=5).json()["outbox"] == 0
    finally:
        broker.stop()


def test_agent_killed_and_restarted_loses_no_reading(
        agent_factory: AgentFactory, tmp_path: Path, mqtt_url: str, tenant: dict[str, str]) -> None:
    """Readings in the outbox when the agent is killed (-9), and readings published while it is dead."""
    port = free_port()
    db = str(tmp_path / "broker.db")
    broker = FlexmeterProcess(["broker", "--port", str(port), "--db", db]).start()
    ngsi = broker.url
    data_dir = tmp_path / "killed"
    try:
        agent = agent_factory(ngsi, "json", mqtt_url=mqtt_url, data_dir=data_dir)
        key = f"k{uuid.uuid4().hex[:8]}"
        provision(agent.url, tenant, [{"apikey": key, "entity_type": "Meter"}])
        broker.stop()
        publish_all(mqtt_url, [(f"/json/{key}/m{i}/attrs", json.dumps({"e": i})) for i in range(100)])
        wait_for(lambda: requests.get(f"{agent.url}/health", timeout=5).json()["outbox"] == 100)
        agent.kill()
        # Published while the agent is dead: Mosquitto keeps them for the agent's persistent session.
        publish_all(mqtt_url, [(f"/json/{key}/m{i}/attrs", json.dumps({"e": i})) for i in range(100, 150)])
        broker = FlexmeterProcess(["broker", "--port", str(port), "--db", db]).start()
        agent_factory(ngsi, "json", mqtt_url=mqtt_url, data_dir=data_dir)
        wait_for(lambda: count_entities(ngsi, tenant, "Meter") == 150, timeout=30)
        assert must_get_entity(ngsi, tenant, "Meter:m149")["e"]["value"] == 149
        assert must_get_entity(ngsi, tenant, "Meter:m0")["e"]["value"] == 0
    finally:
        broker.stop()
