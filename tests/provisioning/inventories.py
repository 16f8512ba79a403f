"""Small inventories written by the tests (unique apikeys: the agent's apikeys are global)."""

from __future__ import annotations

import uuid
from pathlib import Path

KEY_VALUE = "00112233445566778899AABBCCDDEEFF"


def small_inventory(directory: Path, *, meters: int = 3, apikey: str | None = None) -> tuple[Path, str]:
    """A one-tenant inventory (tenant given by --service) with a group, topology, meters and a subscription."""
    apikey = apikey or f"k{uuid.uuid4().hex[:12]}"
    (directory / "meter.key").write_text(KEY_VALUE + "\n")
    lines = [
        "version: 1",
        "tenants:",
        "  - timezone: Europe/Stockholm",
        "    service_paths: [/malmo/lv, /malmo/assets]",
        "    default_service_path: /malmo/assets",
        "    groups:",
        f"      - {{apikey: {apikey}, service_path: /malmo/lv, protocol: connode}}",
        "    substations:",
        "      - {id: SS-1, name: Hyllie, location: {latitude: 55.56, longitude: 12.97}, rated_power: 800}",
        "    feeders:",
        "      - {id: F-1, substation: SS-1, rated_current: 250}",
        "    buildings:",
        "      - {id: B-1, name: Hyllie Boulevard 10, feeder: F-1, substation: SS-1, customers_count: 3}",
        "    meters:",
    ]
    for index in range(meters):
        agent_id = ", device_id: 4D4D4D0000000002" if index == 2 else ""  # the agent's id differs from ours
        lines.append(f"      - {{id: M-{index:04d}{agent_id}, group: {apikey}, type: electricity, model: E350,"
                     " building: B-1, feeder: F-1, keys: {aes_key: 'file:meter.key'}, commands: [breaker]}")
    lines += [
        "    subscriptions:",
        "      - file: subscriptions/timeseries.json",
        "        service_path: /malmo/#",
    ]
    path = directory / "inventory.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, apikey


def bulk_inventory(directory: Path, count: int) -> tuple[Path, str]:
    """``count`` meters in a CSV (keys from one key file), plus the YAML that names it."""
    apikey = f"bulk{uuid.uuid4().hex[:10]}"
    keys = [f"W-{i:05d}={uuid.uuid4().hex.upper()}" for i in range(count)]
    (directory / "bulk.keys").write_text("\n".join(keys) + "\n")
    rows = ["id,serial,address.secondary,keys.aes_key,building,location.latitude,location.longitude"]
    for i in range(count):
        rows.append(f"W-{i:05d},{10000000 + i},{10000000 + i},file:bulk.keys#W-{i:05d},B-{i % 50:02d},"
                    f"45.{i % 1000:03d},7.{i % 997:03d}")
    (directory / "meters.csv").write_text("\n".join(rows) + "\n")
    buildings = "\n".join(f"      - {{id: B-{b:02d}, category: residential}}" for b in range(50))
    (directory / "bulk.yaml").write_text(f"""version: 1
tenants:
  - service_paths: [/turin/water]
    timezone: Europe/Rome
    groups:
      - {{apikey: {apikey}, protocol: wmbus}}
    buildings:
{buildings}
    meter_files:
      - file: meters.csv
        defaults: {{group: {apikey}, type: water, manufacturer: DME}}
""")
    return directory / "bulk.yaml", apikey
