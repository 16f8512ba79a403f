"""The provisioning contract of iotagent-node-lib, on a real agent process, through IotAgentClient and raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from flexmeter.ngsi import FiwareHeaders
from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.ngsi.iota import IotAgentClient
from tests.iot_agents.core.conftest import start_agent
from tests.support.processes import FlexmeterProcess


@pytest.fixture(scope="module")
def north(module_broker: FlexmeterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = start_agent(tmp_path_factory.mktemp("agent"), module_broker.url, "json")
    try:
        yield proc.url
    finally:
        proc.stop()


def test_about_and_health(north: str) -> None:
    about = requests.get(f"{north}/iot/about", timeout=5).json()
    assert about["libVersion"] and about["families"] == ["json"]
    assert requests.get(f"{north}/health", timeout=5).json()["status"] == "ok"


def test_groups_and_devices_crud_with_fiware_status_codes(north: str, tenant: dict[str, str]) -> None:
    headers = {**tenant, "Content-Type": "application/json"}
    group = {"apikey": "key-1", "entity_type": "Meter", "resource": "/iot/json",
             "attributes": [{"object_id": "e", "name": "energy", "type": "Number"}]}
    created = requests.post(f"{north}/iot/services", json={"services": [group]}, headers=headers, timeout=5)
    assert (created.status_code, created.json()) == (201, {})
    duplicate = requests.post(f"{north}/iot/services", json={"services": [group]}, headers=headers, timeout=5)
    assert duplicate.status_code == 409 and duplicate.json()["name"] == "DUPLICATE_GROUP"
    listed = requests.get(f"{north}/iot/services", headers=headers, timeout=5).json()
    assert listed["count"] == 1 and listed["services"][0]["entity_type"] == "Meter"
    assert requests.get(f"{north}/iot/groups", headers=headers, timeout=5).json()["groups"][0]["apikey"] == "key-1"
    put = requests.put(f"{north}/iot/services", params={"apikey": "key-1", "resource": "/iot/json"},
                       json={"explicitAttrs": True}, headers=headers, timeout=5)
    assert put.status_code == 204
    assert requests.get(f"{north}/iot/services", headers=headers, timeout=5).json()["services"][0]["explicitAttrs"]

    device = {"device_id": "m-1", "protocol": "IoTA-JSON", "timezone": "Europe/Stockholm",
              "attributes": [{"object_id": "p", "name": "power", "type": "Number",
                              "metadata": {"unitCode": {"type": "Text", "value": "WTT"}}}],
              "internal_attributes": [{"name": "dlms_guek", "value": "SECRETSECRET0001"}]}
    created = requests.post(f"{north}/iot/devices", json={"devices": [device]}, headers=headers, timeout=5)
    assert (created.status_code, created.json()) == (201, {})
    duplicate = requests.post(f"{north}/iot/devices", json={"devices": [device]}, headers=headers, timeout=5)
    assert duplicate.status_code == 409
    assert duplicate.json()["name"] == "DUPLICATE_DEVICE_ID" and set(duplicate.json()) == {"name", "message"}
    got = requests.get(f"{north}/iot/devices/m-1", headers=headers, timeout=5)
    assert got.status_code == 200
    body = got.json()
    assert body["entity_name"] == "Meter:m-1" and body["entity_type"] == "Meter" and body["apikey"] == "key-1"
    assert "SECRETSECRET0001" not in got.text
    listing = requests.get(f"{north}/iot/devices", headers=headers, timeout=5).json()
    assert listing["count"] == 1 and listing["devices"][0]["device_id"] == "m-1"
    put = requests.put(f"{north}/iot/devices/m-1", json={"timezone": "UTC"}, headers=headers, timeout=5)
    assert put.status_code == 204
    assert requests.get(f"{north}/iot/devices/m-1", headers=headers, timeout=5).json()["timezone"] == "UTC"
    assert requests.delete(f"{north}/iot/devices/m-1", headers=headers, timeout=5).status_code == 204
    missing = requests.get(f"{north}/iot/devices/m-1", headers=headers, timeout=5)
    assert missing.status_code == 404 and missing.json()["name"] == "DEVICE_NOT_FOUND"
    gone = requests.delete(f"{north}/iot/services", params={"apikey": "key-1", "resource": "/iot/json"},
                           headers=headers, timeout=5)
    assert gone.status_code == 204
    assert requests.get(f"{north}/iot/services", headers=headers, timeout=5).json()["count"] == 0


def test_errors_have_the_fiware_name_and_message(north: str, tenant: dict[str, str]) -> None:
    no_headers = requests.get(f"{north}/iot/devices", timeout=5)
    assert no_headers.status_code == 400 and no_headers.json()["name"] == "MISSING_HEADERS"
    bad = requests.post(f"{north}/iot/devices", data=b"{nope", headers=tenant, timeout=5)
    assert bad.status_code == 400 and bad.json()["name"] == "WRONG_SYNTAX"
    no_id = requests.post(f"{north}/iot/devices", json={"devices": [{"entity_type": "X"}]}, headers=tenant,
                          timeout=5)
    assert no_id.status_code == 400 and no_id.json()["name"] == "WRONG_SYNTAX"
    not_found = requests.put(f"{north}/iot/services", params={"apikey": "nope"}, json={}, headers=tenant, timeout=5)
    assert not_found.status_code == 404 and not_found.json()["name"] == "DEVICE_GROUP_NOT_FOUND"


def test_iot_agent_client_round_trip(north: str, tenant: dict[str, str]) -> None:
    headers = FiwareHeaders(tenant["Fiware-Service"], tenant["Fiware-ServicePath"])
    with IotAgentClient(north, headers) as client:
        assert client.about()["libVersion"]
        client.create_group({"apikey": "k2", "entity_type": "Thing"})
        client.create_devices([{"device_id": f"d{i}"} for i in range(30)])
        assert len(client.iter_devices(page=7)) == 30
        assert client.get_device("d3")["entity_name"] == "Thing:d3"
        client.update_device("d3", {"entity_name": "urn:thing:3"})
        assert client.get_device("d3")["entity_name"] == "urn:thing:3"
        client.delete_device("d3")
        assert not client.device_exists("d3")
        with pytest.raises(NgsiResponseError) as err:
            client.create_device({"device_id": "d4"})
        assert (err.value.status, err.value.error) == (409, "DUPLICATE_DEVICE_ID")
        client.update_group("k2", {"timestamp": False})
        assert client.list_groups()[0]["timestamp"] is False
        client.delete_group("k2")
        assert client.list_groups() == []
