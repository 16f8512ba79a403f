"""`flexmeter simulate` on the command line: the summary, the ground truth file, the inventories it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flexmeter.provisioning.inventory import load_inventory

ROOT = Path(__file__).resolve().parents[2]


def _flexmeter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flexmeter", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_dry_run_prints_the_summary_and_writes_the_truth(tmp_path: Path) -> None:
    truth = tmp_path / "truth.json"
    done = _flexmeter("simulate", "--pilot", "malmo", "--scale", "0.01", "--speed", "0", "--duration", "120",
                      "--seed", "4", "--start", "2026-11-27T08:00:00Z", "--dry-run", "--json", "--truth", str(truth))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["pilots"] == ["malmo"] and summary["sim_seconds"] == 120
    assert summary["readings_sent"] == summary["readings_delivered"] > 0
    assert set(summary["transports"]) == {"mqtt"}
    ground = json.loads(truth.read_text())
    assert ground["start"] == "2026-11-27T08:00:00Z" and ground["end"] == "2026-11-27T08:02:00Z"
    assert ground["sent"]["readings"]["connode"] == summary["readings_sent"]
    assert {i["kind"] for i in ground["injected"]} >= {"losses", "outage", "low_delta_t"}
    assert "simulate:" in done.stderr


def test_write_inventory_then_simulate_it(tmp_path: Path) -> None:
    target = tmp_path / "turin.yaml"
    done = _flexmeter("simulate", "--pilot", "turin", "--scale", "0.002", "--seed", "9", "--write-inventory",
                      str(target), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inventories"] == [str(target)]
    tenant = load_inventory(target).inventory.tenants[0]
    assert tenant.service == "iren" and len(tenant.meters) == 10 * 3 + 1 + 1 + 1
    done = _flexmeter("simulate", "--pilot", "turin", "--inventory", str(target), "--speed", "0", "--duration",
                      "30", "--dry-run", "--json", "--start", "1795777200")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["meters"]["heat_mbus"] == 10


def test_default_fleet_is_the_example_inventories() -> None:
    done = _flexmeter("simulate", "--speed", "0", "--duration", "20", "--dry-run", "--json", "--progress", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["meters"] == {"heat_mbus": 3, "elec_dlms": 2, "substation_dlms": 2, "nialm": 2,
                                                 "ennova": 1, "water_wmbus": 6, "e350": 6, "pv": 2, "echelon": 2,
                                                 "heat_connode": 3}


def test_bad_pilot_and_missing_broker_fail_clearly() -> None:
    done = _flexmeter("simulate", "--pilot", "rome", "--dry-run")
    assert done.returncode != 0 and "turin, malmo or all" in done.stderr
    done = _flexmeter("simulate", "--pilot", "malmo", "--mqtt-url", "mqtt://127.0.0.1:1", "--duration", "5")
    assert done.returncode == 2 and "does not answer" in done.stderr
