"""A 5,000-meter CSV applied in batches (the issue asks for well under a minute), then a no-op re-apply."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.provisioning.conftest import Stack, headers, run_cli
from tests.provisioning.inventories import bulk_inventory

METERS = 5000


def test_5000_meter_csv_applies_in_under_a_minute(stack: Stack, service: str, tmp_path: Path) -> None:
    inventory, _ = bulk_inventory(tmp_path, METERS)
    started = time.perf_counter()
    result = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    elapsed = time.perf_counter() - started
    print(f"\napply of {METERS} meters (CSV, keys from a key file): {elapsed:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["device"]["created"] == METERS
    assert summary["entity"]["created"] == METERS + 50  # Device entities + buildings
    assert elapsed < 60, f"{elapsed:.1f} s"

    with stack.iota() as iota:
        count, _ = iota.list_devices(headers=headers(service, "/turin/water"), limit=1)
        assert count == METERS
    with stack.ngsi() as ngsi:
        _, total = ngsi.list_entities(headers=headers(service, "/turin/water"), type="Device", limit=1,
                                      options="count")
        assert total == METERS

    started = time.perf_counter()
    again = run_cli("apply", str(inventory), *stack.cli_args(service), "--json", "-q")
    print(f"re-apply (no change) of {METERS} meters: {time.perf_counter() - started:.1f} s")
    assert again.returncode == 0
    assert json.loads(again.stdout)["summary"]["device"] == {
        "created": 0, "updated": 0, "deleted": 0, "unchanged": METERS, "failed": 0, "skipped": 0,
        "not attempted": 0}
