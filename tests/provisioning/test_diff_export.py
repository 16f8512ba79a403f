"""diff after manual changes on either endpoint, and export -> inventory -> plan round trip."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from flexmeter.provisioning.inventory import load_inventory
from flexmeter.provisioning.operations import apply, open_session, plan
from tests.provisioning.conftest import Stack, headers, run_cli
from tests.provisioning.inventories import KEY_VALUE, small_inventory


def test_diff_shows_manual_changes_and_apply_repairs_them(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, _ = small_inventory(tmp_path)
    session = open_session(inventory, stack.target(service))
    try:
        assert apply(session)[1].ok
    finally:
        session.close()
    clean = run_cli("diff", str(inventory), *stack.cli_args(service))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no changes" in clean.stdout

    with stack.ngsi() as ngsi:  # someone renames a building in the broker ...
        ngsi.update_attrs("urn:ngsi-ld:Building:B-1", {"name": {"type": "Text", "value": "Renamed"}},
                          headers=headers(service, "/malmo/assets"))
    with stack.iota() as iota:  # ... and changes a meter's time zone in the agent
        iota.update_device("M-0001", {"timezone": "UTC"}, headers=headers(service, "/malmo/lv"))
    (tmp_path / "meter.key").write_text("FFEEDDCCBBAA99887766554433221100\n")  # and the key file is rotated

    result = run_cli("diff", str(inventory), *stack.cli_args(service), "--json")
    assert result.returncode == 1, result.stderr
    changes = {c["item"]: c for c in json.loads(result.stdout)["changes"]}
    assert changes["Building urn:ngsi-ld:Building:B-1"]["fields"] == [
        {"field": "name.value", "remote": "Renamed", "inventory": "Hyllie Boulevard 10"}]
    assert {"field": "timezone", "remote": "UTC", "inventory": "Europe/Stockholm"} in changes["meter M-0001"]["fields"]
    # every meter's key changed; shown as changed, never as a value or a digest
    assert changes["meter M-0002"]["fields"] == [{"field": "internal_attributes.key_digests.aes_key",
                                                   "remote": "(old key, not shown)",
                                                   "inventory": "(new key, not shown)"}]
    assert "FFEEDDCCBBAA" not in result.stdout + result.stderr and KEY_VALUE not in result.stdout

    human = run_cli("diff", str(inventory), *stack.cli_args(service))
    assert human.returncode == 1
    assert 'name.value: "Renamed" -> "Hyllie Boulevard 10"' in human.stdout
    assert "inventory.yaml:13" in human.stdout  # the building's line in the inventory

    repaired = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    assert repaired.returncode == 0, repaired.stderr
    summary = json.loads(repaired.stdout)["summary"]
    assert summary["device"]["updated"] == 3 and summary["entity"]["updated"] == 1
    assert run_cli("diff", str(inventory), *stack.cli_args(service)).returncode == 0


def test_diff_lists_what_is_not_in_the_inventory(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, apikey = small_inventory(tmp_path, meters=1)
    session = open_session(inventory, stack.target(service))
    try:
        assert apply(session)[1].ok
        with stack.iota() as iota:
            iota.create_device({"device_id": "stray", "protocol": "connode", "apikey": apikey},
                               headers=headers(service, "/malmo/lv"))
        extra = plan(session, with_extra=True).by_action("extra")
    finally:
        session.close()
    assert [(c.kind, c.key) for c in extra] == [("device", "stray")]


def test_export_round_trip(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, _ = small_inventory(tmp_path)
    session = open_session(inventory, stack.target(service))
    try:
        assert apply(session)[1].ok
    finally:
        session.close()
    exported = tmp_path / "exported.yaml"
    result = run_cli("export", str(inventory), *stack.cli_args(service), "--out", str(exported))
    assert result.returncode == 0, result.stderr
    text = exported.read_text()
    assert KEY_VALUE not in text and "file:meter.key" in text  # the reference, never the key

    original = load_inventory(inventory, service=service).inventory.tenants[0]
    again = load_inventory(exported).inventory.tenants[0]
    assert again.service == service
    assert [m.device_id for m in again.meters] == [None, None, "4D4D4D0000000002"]
    assert {m.timezone for m in again.meters} == {"Europe/Stockholm"}  # explicit now, inherited before
    assert [m.model_dump(exclude={"timezone"}) for m in again.meters] == [
        m.model_dump(exclude={"timezone"}) for m in original.meters]
    assert [b.model_dump(exclude={"service_path"}) for b in again.buildings] == [
        b.model_dump(exclude={"service_path"}) for b in original.buildings]
    assert [s.model_dump(exclude={"service_path"}) for s in again.substations] == [
        s.model_dump(exclude={"service_path"}) for s in original.substations]
    assert [g.apikey for g in again.groups] == [g.apikey for g in original.groups]

    # the exported inventory, applied to the same endpoints, changes nothing
    session = open_session(exported, stack.target(service))
    try:
        pending = plan(session).pending
    finally:
        session.close()
    assert pending == [], [c.as_json() for c in pending]
    assert yaml.safe_load(text)["version"] == 1
