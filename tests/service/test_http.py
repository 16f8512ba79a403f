"""The real ``flexmeter service`` process over HTTP, with a real embedded broker receiving its results."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi.errors import NgsiResponseError
from flexmeter.provisioning.subscriptions import ensure_subscription, load_subscription, orion_config_dir
from flexmeter.service.synthetic import SyntheticSubstation
from tests.service.conftest import service_process
from tests.support.processes import FlexmeterProcess

START = 1_790_000_100.0


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except NgsiResponseError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def post(url: str, tenant: str, entities: list[dict], path: str = "/malmo") -> requests.Response:
    return requests.post(f"{url}/notify", json={"subscriptionId": "sub1", "data": entities},
                         headers={"Fiware-Service": tenant, "Fiware-ServicePath": path}, timeout=30)


def end_to_end(broker_url: str, service_url: str, tenant: str) -> None:
    """orion_config's service subscriptions in the broker → notifications → service → results in the broker."""
    client = NgsiClient(broker_url)
    headers = FiwareHeaders(tenant, "/malmo")
    for path in sorted(orion_config_dir().glob("subscriptions/service-*.json")):
        ensure_subscription(client, load_subscription(path, SERVICE_URL=service_url), headers)
    grid = SyntheticSubstation(name="E2E", meters=5, loss_share=0.05, seed=3)
    client.batch_update(grid.topology(), "append", headers=headers)
    for batch in grid.run(START, START + 2400.0, 60.0):
        client.batch_update(batch, "append", headers=headers)
    entity = wait_for(lambda: client.get_entity("urn:ngsi-ld:EnergyBalance:Substation:E2E", headers=headers), 30.0)
    assert abs(entity["lossesPercent"]["value"] - 5.0) <= 0.1
    assert entity["metersExpected"]["value"] == 5 and entity["completeness"]["value"] == 1


def test_balance_written_to_the_broker(broker_process: FlexmeterProcess, tmp_path: Path, tenant: str) -> None:
    grid = SyntheticSubstation(meters=40, loss_share=0.03)
    with service_process(tmp_path, broker_process.url) as service:
        assert post(service.url, tenant, grid.topology()).status_code == 200
        for batch in grid.run(START, START + 3600.0, 60.0):
            response = post(service.url, tenant, batch)
            assert response.status_code == 200, response.text
        replay = post(service.url, tenant, batch)
        assert replay.json()["duplicates"] == len(batch) and replay.json()["new"] == 0
        losses = requests.get(f"{service.url}/v1/losses", headers={"Fiware-Service": tenant,
                                                                   "Fiware-ServicePath": "/malmo"}, timeout=30).json()
        assert len(losses["balances"]) >= 3
        assert all(abs(b["lossesPercent"] - 3.0) <= 0.1 for b in losses["balances"])
        client = NgsiClient(broker_process.url)
        headers = FiwareHeaders(tenant, "/malmo")
        entity = wait_for(lambda: client.get_entity("urn:ngsi-ld:EnergyBalance:Substation:S1", headers=headers))
        assert entity["type"] == "EnergyBalance"
        assert abs(entity["lossesPercent"]["value"] - 3.0) <= 0.1
        assert entity["lossesPercent"]["metadata"]["unitCode"]["value"] == "P1"
        assert entity["refSubstation"] == {"type": "Relationship", "value": grid.substation_id, "metadata": {}}
        assert entity["TimeInstant"]["value"].endswith("Z")
        profile = wait_for(lambda: client.get_entity(
            "urn:ngsi-ld:ConsumptionProfile:ACMeasurement:S1-M001:PT15M", headers=headers))
        assert profile["vector"]["value"] == "electricity" and profile["estimated"]["value"] is False
        # another tenant sees nothing
        other = requests.get(f"{service.url}/v1/losses", headers={"Fiware-Service": tenant + "x"}, timeout=10)
        assert other.json()["balances"] == []
        metrics = requests.get(f"{service.url}/metrics", timeout=10).text
        assert 'flexmeter_service_entities_total{outcome="duplicate"} 41' in metrics
        end_to_end(broker_process.url, service.url, tenant + "e2e")
        # without --token the breaker refuses: it needs an authenticated caller
        refused = requests.post(f"{service.url}/v1/meters/{grid.meter_id(1)}/breaker", json={"action": "disconnect"},
                                headers={"Fiware-Service": tenant}, timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "Forbidden"


def test_breaker_command_through_the_broker(broker_process: FlexmeterProcess, tmp_path: Path, tenant: str) -> None:
    client = NgsiClient(broker_process.url)
    headers = FiwareHeaders(tenant, "/malmo")
    meter = "urn:ngsi-ld:ACMeasurement:E350-77"
    client.create_entity({"id": meter, "type": "ACMeasurement", "breaker": {"type": "command", "value": ""},
                          "breaker_status": {"type": "commandStatus", "value": "UNKNOWN"}}, headers=headers)
    tenant_headers = {"Fiware-Service": tenant, "Fiware-ServicePath": "/malmo"}
    with service_process(tmp_path, broker_process.url, "--token", "op-token") as service:
        auth = {**tenant_headers, "Authorization": "Bearer op-token", "X-User": "alice"}
        url = f"{service.url}/v1/meters/{meter}/breaker"
        # errors, OpenAPI and the bearer token on the REST API
        bad = requests.post(f"{service.url}/notify", data=b"not json", timeout=10)
        assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
        bad = requests.post(f"{service.url}/notify", json={"data": [1]}, timeout=10)
        assert bad.status_code == 400 and bad.json()["error"] == "InvalidNotification"
        document = requests.get(f"{service.url}/openapi.json", timeout=10).json()
        assert document["openapi"].startswith("3.") and "/v1/losses" in document["paths"]
        assert requests.get(f"{service.url}/v1/meters", timeout=10).status_code == 401
        wrong = requests.get(f"{service.url}/v1/meters", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401 and wrong.json()["error"] == "Unauthorized"
        ok = requests.get(f"{service.url}/v1/meters", headers={"Authorization": "Bearer op-token"}, timeout=10)
        assert ok.status_code == 200 and ok.json() == []
        assert requests.get(f"{service.url}/health", timeout=10).status_code == 200
        assert requests.post(url, json={"action": "disconnect"}, headers=tenant_headers, timeout=10).status_code == 401
        bad = requests.post(url, json={"action": "explode"}, headers=auth, timeout=10)
        assert bad.status_code == 400
        command = {"action": "disconnect", "entityType": "ACMeasurement"}
        sent = requests.post(url, json=command, headers=auth, timeout=10)
        assert sent.status_code == 202, sent.text
        assert sent.json()["status"] == "PENDING" and sent.json()["requestedBy"].startswith("alice@token:")
        assert client.get_entity(meter, headers=headers)["breaker"]["value"] == "disconnect"
        # the agent executes it and reports back through the broker
        reply = {"breaker_status": {"type": "commandStatus", "value": "OK"},
                 "breaker_info": {"type": "commandResult", "value": "disconnected"}}
        client.append_attrs(meter, reply, headers=headers)
        status = requests.get(url, headers=auth, timeout=10).json()
        assert status["broker"]["breaker_status"] == "OK"
        audit = [(a["action"], a["status"], a["info"]) for a in status["audit"]]
        assert audit == [("disconnect", "OK", "disconnected")]
        missing = requests.post(f"{service.url}/v1/meters/urn:ngsi-ld:ACMeasurement:nope/breaker",
                                json={"action": "connect", "entityType": "ACMeasurement"}, headers=auth, timeout=10)
        assert missing.status_code == 404
        audit = requests.get(f"{service.url}/v1/breaker/audit", headers=auth, timeout=10).json()
        assert [a["status"] for a in audit] == ["FAILED", "OK"]


def test_killed_and_restarted_loses_nothing(tmp_path: Path, tenant: str) -> None:
    grid = SyntheticSubstation(name="K", meters=8, loss_share=0.02, seed=5)
    batches = [grid.topology(), *grid.run(START, START + 2700.0, 60.0)]
    headers = {"Fiware-Service": tenant, "Fiware-ServicePath": "/malmo"}
    first = service_process(tmp_path, None).start()
    try:
        for batch in batches[:25]:
            assert post(first.url, tenant, batch).status_code == 200
    finally:
        first.kill()  # SIGKILL: no clean shutdown
    with service_process(tmp_path, None) as second:
        for batch in batches[20:]:  # some delivered again
            assert post(second.url, tenant, batch).status_code == 200
        balances = requests.get(f"{second.url}/v1/losses", headers=headers, timeout=30).json()["balances"]
        quarters = requests.get(f"{second.url}/v1/meters/{grid.meter_id(2)}/consumption", headers=headers,
                                timeout=30).json()["periods"]
    assert [b["from"] for b in balances] == ["2026-09-21T14:15:00.000Z", "2026-09-21T14:30:00.000Z",
                                             "2026-09-21T14:45:00.000Z"]
    assert all(abs(b["lossesPercent"] - 2.0) <= 0.1 and not b["estimated"] for b in balances)
    assert len(quarters) == 3 and all(q["completeness"] == 1.0 for q in quarters)
