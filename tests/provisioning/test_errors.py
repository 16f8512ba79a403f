"""Bad inventories are refused with the line and the reason (nothing sent); failures half-way are reported
item by item, with exactly what was applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flexmeter.provisioning.apply import apply_plan
from flexmeter.provisioning.desired import compile_inventory
from flexmeter.provisioning.errors import InventoryError
from flexmeter.provisioning.inventory import load_inventory
from flexmeter.provisioning.operations import Target, open_session, plan
from tests.provisioning.conftest import Stack, headers, run_cli, run_process, start_agent
from tests.provisioning.inventories import small_inventory
from tests.support.processes import FlexmeterProcess

GOOD = """\
version: 1
tenants:
  - service: bad
    service_paths: [/p]
    groups:
      - {apikey: k1, protocol: connode}
    buildings:
      - {id: B-1}
    meters:
      - {id: M-1, group: k1, type: electricity, building: B-1}
"""


def problems_of(tmp_path: Path, text: str, csv: str | None = None) -> list[tuple[str, int | None, str]]:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    if csv is not None:
        (tmp_path / "m.csv").write_text(csv)
    with pytest.raises(InventoryError) as caught:
        compile_inventory(load_inventory(path), {"QL_URL": "http://ql"}, environ={})
    return [(Path(p.file).name, p.line, f"{p.where}: {p.reason}") for p in caught.value.problems]


def test_the_good_one_is_good(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(GOOD)
    desired = compile_inventory(load_inventory(tmp_path / "inv.yaml"), {}, environ={})
    assert len(desired.resources) == 4


@pytest.mark.parametrize(("text", "line", "reason"), [
    (GOOD.replace("{id: B-1}", "{id: B-1"), 9, "(while parsing a flow mapping that starts on line 8)"),
    (GOOD.replace("type: electricity", "type: electricty"), 10, "meters[0].type: Input should be 'electricity'"),
    (GOOD.replace("{id: B-1}", "{id: B-1, colour: red}"), 8, "buildings[0].colour: unknown key"),
    (GOOD.replace("group: k1", "group: k2"), 10, "meter M-1.group: no service group with apikey 'k2'"),
    (GOOD.replace("building: B-1}", "building: B-9}"), 10, "building 'B-9' is not declared"),
    (GOOD.replace("- {id: B-1}", "- {id: B-1}\n      - {id: B-1}"), 9, "declared twice (first at"),
    (GOOD.replace("[/p]", "[p]"), 4, "not a valid service path"),
    (GOOD.replace("building: B-1}", "building: B-1, keys: {aes_key: A0B1C2D3E4}}"), 10,
     "key reference: env:VARIABLE or file:PATH"),
    (GOOD.replace("building: B-1}", "building: B-1, keys: {aes_key: 'env:NOT_SET_ANYWHERE'}}"), 10,
     "environment variable NOT_SET_ANYWHERE is not set"),
    (GOOD.replace("building: B-1}", "building: B-1, timezone: Europe/Torino}"), 10, "unknown time zone"),
    (GOOD.replace("{id: B-1}", "{id: B-1, name: \"O'Brien House\"}"), 8, "characters Orion forbids"),
    (GOOD + "    subscriptions:\n      - {file: subscriptions/nope.json}\n", 12, "nope.json not found"),
    (GOOD + "    subscriptions:\n      - {file: subscriptions/timeseries.json, service_path: /x/#}\n", 12,
     "covers none of the tenant's service paths"),
])
def test_bad_inventory_names_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    found = problems_of(tmp_path, text)
    assert any(file == "inv.yaml" and at == line and reason in why for file, at, why in found), found


def test_missing_template_value_is_reported(tmp_path: Path) -> None:
    found = problems_of(tmp_path, GOOD + "    subscriptions:\n      - {file: subscriptions/timeseries.json}\n"
                        .replace("timeseries", "service-readings"))
    assert any(at == 12 and "no value for ${SERVICE_URL}" in why for _, at, why in found), found


def test_a_bad_service_option_is_refused(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(GOOD)
    with pytest.raises(InventoryError, match="'Bad-Tenant' is not a valid Fiware-Service"):
        load_inventory(tmp_path / "inv.yaml", service="Bad-Tenant")


def test_bad_csv_rows_name_the_csv_line(tmp_path: Path) -> None:
    text = GOOD.replace("    meters:", "    meter_files:\n      - {file: m.csv, defaults: {group: k1}}\n    meters:")
    csv = ('id,type,building,location.latitude,location.longitude\n'
           'C-1,water,B-1,45.1,7.6\n'
           '"C-2",gas,B-1,91,7.6\n'          # latitude out of range
           'C-3,steam,B-1,45.1,7.6\n'        # unknown meter type
           'C-4,water,B-7,45.1,7.6\n')       # unknown building
    found = problems_of(tmp_path, text, csv)
    assert ("m.csv", 3, "column location.latitude: Input should be less than or equal to 90") in found
    assert any(f == "m.csv" and line == 4 and "column type" in why for f, line, why in found), found
    assert any(f == "m.csv" and line == 5 and "'B-7' is not declared" in why for f, line, why in found), found
    bad_header = problems_of(tmp_path, text, "id,typo\nC-1,water\n")
    assert ("m.csv", 1, "column 'typo': unknown meter field") in bad_header


def test_cli_refuses_a_bad_inventory_and_changes_nothing(stack: Stack, service: str, tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(GOOD.replace("group: k1", "group: nope"))
    result = run_process("apply", str(path), *stack.cli_args(service))  # as a user runs it
    assert result.returncode == 2
    assert "nothing was changed" in result.stderr
    assert f"{path}:10: meter M-1.group: no service group with apikey 'nope'" in result.stderr
    as_json = run_cli("plan", str(path), *stack.cli_args(service), "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["problems"][0]["line"] == 10
    with stack.iota() as iota:
        assert iota.list_groups(headers=headers(service, "/p")) == []


def test_a_refused_group_fails_its_meters_and_the_rest_is_applied(stack: Stack, service: str,
                                                                  tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    taken, apikey = small_inventory(first_dir, meters=1)
    assert run_cli("apply", str(taken), *stack.cli_args(service + "x"), "-q").returncode == 0
    # another tenant's inventory reuses the apikey: the agent refuses the group (apikeys are global)
    inventory, _ = small_inventory(second_dir, meters=2, apikey=apikey)
    result = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["aborted"] is None
    failed = {f["item"]: f for f in report["failed"]}
    assert failed[f"group {apikey}"]["status"] == "failed"
    assert "409" in failed[f"group {apikey}"]["reason"]
    assert failed["meter M-0000"]["reason"] == f"its service group {apikey} failed"
    assert failed["meter M-0001"]["origin"].endswith("inventory.yaml:16")
    summary = report["summary"]
    assert summary["entity"]["created"] == 5  # topology and Device entities were applied
    assert summary["subscription"]["created"] == 1
    human = run_cli("apply", str(inventory), *stack.cli_args(service), "-q")
    assert f"FAILED group {apikey} in {service}/malmo/lv" in human.stdout


def test_an_endpoint_lost_half_way_is_reported_with_what_was_applied(service: str, tmp_path: Path,
                                                                     stack: Stack) -> None:
    broker = FlexmeterProcess(["broker", "--port", "0", "--db", str(tmp_path / "broker.db")]).start()
    agent = start_agent(broker.url, tmp_path / "agent")
    try:
        inventory, _ = small_inventory(tmp_path, meters=4)
        session = open_session(inventory, Target(broker.url, agent.url, stack.ql_url, service=service))
        current = plan(session)
        broker.stop()  # the broker goes away after the plan, before the entities are written
        report = apply_plan(current, session.endpoints)
        session.close()
    finally:
        agent.stop()
        broker.stop()
    assert report.aborted is not None and "Connection refused" in report.aborted
    applied = {(o.change.kind, o.change.key) for o in report.with_status("applied")}
    assert ("group", f"|{current.by_action('create')[0].resource.body['apikey']}") in applied  # type: ignore[union-attr]
    not_attempted = report.with_status("not attempted")
    assert {o.change.kind for o in not_attempted} == {"entity", "device", "subscription"}
    assert len(report.with_status("applied")) + len(not_attempted) == len(current.pending)
    summary = report.summary()
    assert summary["group"]["created"] == 1
    assert summary["entity"]["not attempted"] + summary["device"]["not attempted"] >= 4
