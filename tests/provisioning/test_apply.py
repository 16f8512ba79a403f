"""apply against the embedded stack: idempotent, the pilots' example inventories, delete, no key printed."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flexmeter.provisioning.operations import apply, open_session
from flexmeter.provisioning.pilots import apply_pilots
from tests.provisioning.conftest import Stack, headers, run_cli
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
        # the agent subscribes to each meter's commands itself (orion_config/README.md), in the background
        deadline = time.monotonic() + 20
        while sum("commands of" in s.get("description", "") for s in subs) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
            subs = ngsi.list_subscriptions(headers=headers(service, "/malmo/#"))
        assert sum("commands of" in s.get("description", "") for s in subs) == 3


def test_pilot_examples_apply_and_reapply(stack: Stack) -> None:
    """examples/turin.yaml and examples/malmo.yaml, as `flexmeter up` applies them (tenants iren and eon)."""
    first = apply_pilots(stack.ngsi_url, stack.iota_url, stack.ql_url)
    for report in first:
        assert report.ok, [o.as_json() for o in report.outcomes if o.status != "applied"]
    turin, malmo = (r.summary() for r in first)
    assert turin["device"]["created"] == 16 and malmo["device"]["created"] == 13
    assert turin["group"]["created"] == 6 and malmo["group"]["created"] == 5
    for report in apply_pilots(stack.ngsi_url, stack.iota_url, stack.ql_url):
        assert report.ok and not report.outcomes, [o.as_json() for o in report.outcomes]
    with stack.iota() as iota:
        assert iota.list_devices(headers=headers("iren", "/turin/water"))[0] == 6  # from the CSV
        assert iota.list_devices(headers=headers("eon", "/malmo/lv"))[0] == 6
    with stack.ngsi() as ngsi:
        echelon = ngsi.get_entity("urn:ngsi-ld:Device:MA-ECH-01", headers=headers("eon", "/malmo/substation1"))
        assert echelon["refSubstation"]["value"] == "urn:ngsi-ld:Substation:SS-MA-01"
        substation = ngsi.get_entity("urn:ngsi-ld:Substation:SS-MA-01", headers=headers("eon", "/malmo/assets"))
        assert substation["refDevice"]["value"] == ["urn:ngsi-ld:Device:MA-ECH-01"]


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
