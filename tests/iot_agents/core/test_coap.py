"""The CoAP south transport against a real `flexmeter agent json connode --coap-port 0` and aiocoap's client:
readings land in the embedded broker, the answer follows the commit, errors are the FIWARE agents'."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiocoap
import pytest
import requests
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from flexmeter.iot_agents.core.agent import Agent, AgentConfig
from flexmeter.iot_agents.core.coap import CoapPortInUse
from tests.iot_agents.connode.test_connode_decoder import EXAMPLE
from tests.iot_agents.core.conftest import get_entity, must_get_entity, provision, start_agent, wait_for
from tests.support.processes import FlexmeterProcess


def coap_url(proc: FlexmeterProcess) -> str:
    match = re.search(r"coap on (coap://\S+)", proc.log())
    assert match, proc.log()
    return match.group(1)


def coap(method: Code, url: str, payload: bytes = b"", *, confirmable: bool = True,
         content_format: int | None = 50) -> aiocoap.Message:
    """One request with a fresh aiocoap client context; the response."""
    async def run() -> aiocoap.Message:
        client = await aiocoap.Context.create_client_context()
        try:
            request = aiocoap.Message(code=method, uri=url, payload=payload)
            request.mtype = Type.CON if confirmable else Type.NON
            if content_format is not None:
                request.opt.content_format = content_format
            return await asyncio.wait_for(client.request(request).response, 30)
        finally:
            await client.shutdown()

    return asyncio.run(run())


def body(response: aiocoap.Message) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response.payload)
    return result


def metric(north: str, name: str, family: str) -> float:
    for line in requests.get(f"{north}/metrics", timeout=5).text.splitlines():
        if line.startswith(f'{name}{{family="{family}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, module_broker: FlexmeterProcess) -> Iterator[FlexmeterProcess]:
    proc = start_agent(tmp_path_factory.mktemp("agent"), module_broker.url, "json", "connode",
                       extra=("--coap-port", "0"))
    yield proc
    assert proc.stop() == 0  # a clean shutdown, CoAP loop and thread included
    assert "Traceback" not in proc.log(), proc.log()


@pytest.fixture
def room(agent: FlexmeterProcess, tenant: dict[str, str]) -> str:
    """A group (autoprovision off) with one device r1 whose `p` is kW -> W; its apikey."""
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "entity_type": "Room", "autoprovision": False}],
              [{"device_id": "r1", "attributes": [
                  {"object_id": "p", "name": "power", "type": "Number", "expression": "p * 1000"}]}])
    return key


def test_readings_over_coap_land_in_the_broker(agent: FlexmeterProcess, module_broker: FlexmeterProcess,
                                              tenant: dict[str, str], room: str) -> None:
    base, ngsi = coap_url(agent), module_broker.url
    decoded_before = metric(agent.url, "iota_decoded_total", "json")
    # iotagent-json's MQTT topic as a CoAP path, confirmable
    response = coap(Code.POST, f"{base}/json/{room}/r1/attrs", json.dumps({"p": 1.5, "mode": "eco"}).encode())
    assert response.code == Code.CHANGED, response.payload
    # answered after the pipeline took it: counted as decoded already, no waiting
    assert metric(agent.url, "iota_decoded_total", "json") == decoded_before + 1
    entity = wait_for(lambda: get_entity(ngsi, tenant, "Room:r1"))
    assert entity["power"]["value"] == 1500
    assert entity["mode"]["value"] == "eco"

    # the HTTP route's shape, ?k=&i=, non-confirmable
    response = coap(Code.POST, f"{base}/iot/json?k={room}&i=r1", b'{"p": 2}', confirmable=False)
    assert response.code == Code.CHANGED and response.mtype == Type.NON
    wait_for(lambda: must_get_entity(ngsi, tenant, "Room:r1")["power"]["value"] == 2000)

    # one attribute per path, PUT as well as POST
    response = coap(Code.PUT, f"{base}/json/{room}/r1/attrs/p", b"3", content_format=None)
    assert response.code == Code.CHANGED
    wait_for(lambda: must_get_entity(ngsi, tenant, "Room:r1")["power"]["value"] == 3000)


def test_connode_gateway_document_over_coap_blockwise(agent: FlexmeterProcess, module_broker: FlexmeterProcess,
                                                      tenant: dict[str, str]) -> None:
    key = f"k{uuid.uuid4().hex[:8]}"
    provision(agent.url, tenant, [{"apikey": key, "resource": "/connode", "timestamp": True}])
    document = json.dumps({**EXAMPLE, "messages": EXAMPLE["messages"][:5]}).encode()
    assert len(document) > 1024  # more than one CoAP block: aiocoap assembles Block1 before we see it
    response = coap(Code.POST, f"{coap_url(agent)}/connode/{key}/gw1/up", document)
    assert response.code == Code.CHANGED, response.payload
    meter = wait_for(lambda: (e := get_entity(module_broker.url, tenant, "ACMeasurement:E350-00012345"))
                     and "totalActiveEnergyImport" in e and e)
    assert meter["totalActiveEnergyImport"]["value"] == 12345.678
    heat = wait_for(lambda: get_entity(module_broker.url, tenant, "SmartMeteringObservation:DH-0042"))
    assert heat["meterType"]["value"] == "Heat"


def test_malformed_payload_gets_4_00_and_is_dead_lettered(agent: FlexmeterProcess, room: str,
                                                          tenant: dict[str, str]) -> None:
    response = coap(Code.POST, f"{coap_url(agent)}/json/{room}/r1/attrs", b'{"t": 21,')
    assert response.code == Code.BAD_REQUEST
    assert response.opt.content_format == 50
    assert body(response) == {"name": "WRONG_SYNTAX", "message": "payload is not JSON: Expecting property name "
                              "enclosed in double quotes at line 1 column 10 (char 9)"}
    # the dead letter was committed before the answer: no waiting
    letters = requests.get(f"{agent.url}/iot/deadletters", params={"limit": 1000}, headers=tenant,
                           timeout=5).json()["deadLetters"]
    mine = [d for d in letters if d["context"].get("params", {}).get("apikey") == room]
    assert len(mine) == 1
    assert mine[0]["raw"] == '{"t": 21,' and mine[0]["error"] == "WRONG_SYNTAX"
    assert mine[0]["context"]["transport"] == "coap"
    assert mine[0]["context"]["route"] == "/json/{apikey}/{device_id}/attrs"


def test_unknown_apikey_device_and_path_get_the_fiware_errors(agent: FlexmeterProcess, room: str) -> None:
    base = coap_url(agent)
    no_group = coap(Code.POST, f"{base}/json/nokey{room}/r1/attrs", b'{"p": 1}')
    assert no_group.code == Code.NOT_FOUND
    assert body(no_group) == {"name": "DEVICE_GROUP_NOT_FOUND", "message": "Couldn't find device group for "
                              f"fields: ['apikey', 'resource'] and values: ['nokey{room}', '']"}
    no_device = coap(Code.POST, f"{base}/iot/json?k={room}&i=nobody", b'{"p": 1}')
    assert no_device.code == Code.NOT_FOUND
    assert body(no_device) == {"name": "DEVICE_NOT_FOUND", "message": "No device was found with id:nobody"}
    no_params = coap(Code.POST, f"{base}/iot/json?i=r1", b'{"p": 1}')
    assert no_params.code == Code.BAD_REQUEST and body(no_params)["name"] == "MANDATORY_PARAMS_NOT_FOUND"
    no_route = coap(Code.POST, f"{base}/json/{room}/r1", b'{"p": 1}')
    assert no_route.code == Code.NOT_FOUND and body(no_route)["name"] == "NOT_FOUND"
    wrong_method = coap(Code.GET, f"{base}/json/{room}/r1/attrs")
    assert wrong_method.code == Code.METHOD_NOT_ALLOWED
    core = coap(Code.GET, f"{base}/.well-known/core")
    assert core.code == Code.CONTENT and '</iot/json>;rt="flexmeter.json.measure"' in core.payload.decode()


def test_a_port_asked_for_and_taken_is_refused(agent: FlexmeterProcess, tmp_path: Path) -> None:
    port = int(coap_url(agent).rsplit(":", 1)[1])
    # aiocoap binds with SO_REUSEPORT: without the agent's own check both would share the port silently
    config = AgentConfig(families=["json"], ngsi_url="http://127.0.0.1:9", data_dir=tmp_path, north_port=0,
                         south_port=0, mqtt_url=None, coap_port=port)
    with pytest.raises(CoapPortInUse, match=f"CoAP port {port}/udp on 127.0.0.1 is in use"):
        Agent(config)
    assert coap(Code.POST, f"{coap_url(agent)}/iot/json?i=r1").code == Code.BAD_REQUEST  # the first one still serves


def test_the_default_port_taken_means_no_coap_not_no_agent(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        agent = Agent(AgentConfig(families=["json"], ngsi_url="http://127.0.0.1:9", data_dir=tmp_path,
                                  north_port=0, south_port=0, mqtt_url=None, coap_port=port, coap_optional=True))
        try:
            assert agent.coap is None and agent.config.coap_port is None
        finally:
            agent.outbox.close()
            agent.registry.close()
