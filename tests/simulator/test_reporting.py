"""Configured reporting intervals (``--interval ROLE=S``, ``--on-clock``) and what the generated inventories
tell the agents (their mapping tables) and the service (customers per building)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from flexmeter.iot_agents.connode.mappings import TABLES as CONNODE_TABLES
from flexmeter.iot_agents.dlms.mappings import TABLES as DLMS_TABLES
from flexmeter.iot_agents.mbus.mappings import GENERIC, table_for
from flexmeter.simulator.errors import FleetError
from flexmeter.simulator.generate import generated_fleet, pilot_inventory
from flexmeter.simulator.model import Simulation

from .conftest import START

ROOT = Path(__file__).resolve().parents[2]


def test_generated_models_name_the_agents_mapping_tables() -> None:
    """A commercial name in ``model`` left the M-Bus and DLMS agents without a table: raw record names and OBIS
    codes reached the broker, and the business service found no heat, water or ST-I reading at all."""
    for pilot in ("turin", "malmo"):
        document, _ = pilot_inventory(pilot, 0.01, 3)
        tenant = document["tenants"][0]
        protocols = {g["apikey"]: g["protocol"] for g in tenant["groups"]}
        for meter in tenant["meters"]:
            protocol, model = protocols[meter["group"]], meter.get("model")
            if protocol == "dlms":
                assert model in DLMS_TABLES, meter
            elif protocol in ("mbus", "wmbus"):
                assert model and table_for(model) is not GENERIC, meter
            elif protocol == "connode":
                assert model in CONNODE_TABLES, meter
            else:
                assert model is None, meter  # Midori, ENNOVA: one format each
            assert meter.get("description") or protocol == "connode"


def test_malmo_buildings_count_one_customer_per_e350() -> None:
    document, _ = pilot_inventory("malmo", 0.05, 3)
    tenant = document["tenants"][0]
    households = Counter(m["building"] for m in tenant["meters"] if m["model"] == "E350")
    assert {b["id"]: b["customers_count"] for b in tenant["buildings"]} == dict(households)


def test_configured_intervals_on_the_clock() -> None:
    fleet = generated_fleet(["turin", "malmo"], 0.0004, 3)
    fleet.reporting({"elec_dlms": 900, "substation_dlms": 900, "e350": 900, "echelon": 900}, on_clock=True)
    start = START + 7  # not on a quarter-hour: readings still come on the clock
    sim = Simulation(fleet, 3, start, 2 * 3600, schedule=[])  # no outage: no last-gasp push
    seen: dict[str, list[int]] = {}
    for t in range(start, start + 2 * 3600):
        for e in sim.step(t):
            if e.family == "dlms":
                seen.setdefault(e.channel.rsplit("/", 1)[1], []).append(e.at)
            elif e.family == "connode":
                for message in json.loads(e.payload)["messages"]:
                    seen.setdefault(message["device"], []).append(e.at)
    configured = [m for m in fleet.meters if m.role in ("elec_dlms", "substation_dlms", "e350", "echelon")]
    assert configured
    for meter in configured:
        times = seen[meter.device_id]
        assert times == list(range(START + 900, start + 2 * 3600, 900)), meter.id
    # the others keep their role's interval at their own offset
    dh = next(m for m in fleet.meters if m.role == "heat_connode")
    assert len(seen[dh.device_id]) == 2 * 3600 // 10


def test_unknown_roles_and_bad_intervals_are_refused() -> None:
    fleet = generated_fleet(["malmo"], 0.002, 3)
    with pytest.raises(FleetError, match="unknown meter role"):
        fleet.reporting({"e351": 60})
    with pytest.raises(FleetError, match="at least 1 s"):
        fleet.reporting({"e350": 0})
    done = subprocess.run([sys.executable, "-m", "flexmeter", "simulate", "--pilot", "malmo", "--scale", "0.002",
                           "--dry-run", "--duration", "1", "--interval", "e350"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "ROLE=SECONDS" in done.stderr
