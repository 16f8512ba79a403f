"""apply against the embedded stack: idempotent, the pilots' example inventories, delete, no key printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flexmeter.provisioning import apply, delete, open_session, plan
from tests.provisioning.conftest import REPO, Stack, headers, run_cli
from tests.provisioning.inventories import KEY_VALUE, small_inventory


def test_apply_twice_second_is_a_no_op(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, apikey = small_inventory(tmp_path)
    first = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["ok"] is True
    assert report["summary"]["group"]["created"] == 1
    assert report["summary"]["device"]["created"] == 3
    assert report["summary"]["entity"]["created"] == 3 + 3  # Substation, Feeder, Building + 3 Device entities
    assert report["summary"]["subscription"]["created"] == 1

    second = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    for kind, row in again["summary"].items():
        assert row["created"] == row["updated"] == 0, (kind, row)
    assert again["summary"]["device"]["unchanged"] == 3
    assert KEY_VALUE not in first.stdout + first.stderr + second.stdout + second.stderr

    # what the endpoints hold
    with stack.iota() as iota:
        count, devices = iota.list_devices(headers=headers(service, "/malmo/lv"), limit=100)
        assert count == 3
        device = devices[0]
        assert device["entity_name"] == f"urn:ngsi-ld:ACMeasurement:{device['device_id']}"
        assert device["apikey"] == apikey and device["timezone"] == "Europe/Stockholm"
        assert KEY_VALUE not in json.dumps(devices)  # the agent moved the key to its key store
        assert device["internal_attributes"]["key_refs"] == {"aes_key": "file:meter.key"}
    with stack.ngsi() as ngsi:
        entity = ngsi.get_entity("urn:ngsi-ld:Device:M-0000", headers=headers(service, "/malmo/lv"))
        assert entity["refBuilding"]["value"] == "urn:ngsi-ld:Building:B-1"
        assert entity["meterProtocol"]["value"] == "connode"
        feeder = ngsi.get_entity("urn:ngsi-ld:Feeder:F-1", headers=headers(service, "/malmo/assets"))
        assert feeder["refSubstation"] == {"type": "Relationship", "value": "urn:ngsi-ld:Substation:SS-1",
                                           "metadata": {}}
        subs = ngsi.list_subscriptions(headers=headers(service, "/malmo/#"))
        ours = [s for s in subs if "time series" in s.get("description", "")]
        assert [s["notification"]["http"]["url"] for s in ours] == [f"{stack.ql_url}/v2/notify"]
        # the agent subscribes to each meter's commands itself (orion_config/README.md)
        assert sum("commands of" in s.get("description", "") for s in subs) == 3


@pytest.mark.parametrize("name", ["turin", "malmo"])
def test_pilot_examples_apply_and_reapply(stack: Stack, service: str, name: str) -> None:
    path = REPO / "examples" / f"{name}.yaml"
    session = open_session(path, stack.target(service))
    try:
        assert all(check.ok for check in session.checks), session.checks
        _, report = apply(session)
        assert report.ok, [o.as_json() for o in report.outcomes if o.status != "applied"]
        again = plan(session)
        assert not again.pending, [c.as_json() for c in again.pending]
    finally:
        session.close()
    with stack.iota() as iota:
        path_of = {"turin": "/turin/water", "malmo": "/malmo/lv"}[name]
        count, _ = iota.list_devices(headers=headers(service, path_of))
        assert count == {"turin": 6, "malmo": 6}[name]


def test_delete_removes_what_apply_created(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, _ = small_inventory(tmp_path, meters=2)
    session = open_session(inventory, stack.target(service))
    try:
        _, report = apply(session)
        assert report.ok
    finally:
        session.close()
    result = run_cli("delete", str(inventory), *stack.cli_args(service), "--yes", "--json", "-q")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["device"]["deleted"] == 2 and summary["group"]["deleted"] == 1
    assert summary["entity"]["deleted"] == 5 and summary["subscription"]["deleted"] == 1
    with stack.iota() as iota:
        assert iota.list_devices(headers=headers(service, "/malmo/lv"))[0] == 0
        assert iota.list_groups(headers=headers(service, "/malmo/lv")) == []
    with stack.ngsi() as ngsi:
        assert ngsi.list_entities(headers=headers(service, "/malmo/assets"))[0] == []
        left = ngsi.list_subscriptions(headers=headers(service, "/malmo/#"))
        assert [s for s in left if "time series" in s.get("description", "")] == []
