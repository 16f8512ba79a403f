"""The pure model: determinism, the inventories it reads and writes, physics and the ground truth."""

from __future__ import annotations

from pathlib import Path

from flexmeter.provisioning.inventory import load_inventory
from flexmeter.simulator.fleet import load_fleet
from flexmeter.simulator.generate import generated_fleet, write_inventory
from flexmeter.simulator.model import Simulation

from .conftest import START, Run, run_simulation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _bytes(fleet_seed: int, sim_seed: int, seconds: int = 60) -> list[tuple[str, bytes]]:
    sim = Simulation(generated_fleet(["turin", "malmo"], 0.01, fleet_seed), sim_seed, START, seconds)
    return [(e.channel, e.payload) for t in range(START, START + seconds) for e in sim.step(t)]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first, again = _bytes(3, 3), _bytes(3, 3)
    assert first == again
    assert len(first) > 100
    other = _bytes(3, 4)
    assert abs(len(other) - len(first)) < 10  # same fleet; only the injected schedule differs
    assert len({p for _, p in first} & {p for _, p in other}) < len(first) // 10


def test_steps_are_consecutive() -> None:
    sim = Simulation(generated_fleet(["malmo"], 0.01, 1), 1, START, 10)
    sim.step(START)
    try:
        sim.step(START + 2)
    except ValueError as exc:
        assert "one second at a time" in str(exc)
    else:
        raise AssertionError("a skipped second must be refused")


def _identity(fleet: object) -> list[tuple[object, ...]]:
    return sorted((m.id, m.role, m.apikey, m.service, m.service_path, m.gateway, m.serial, m.manufacturer,
                   m.system_title, tuple(sorted(m.keys.items())), m.substation, m.building)
                  for m in fleet.meters)  # type: ignore[attr-defined]


def test_written_inventory_is_the_simulated_fleet_and_provisioning_accepts_it(tmp_path: Path) -> None:
    paths = write_inventory(tmp_path / "pilots.yaml", ["turin", "malmo"], 0.01, 5)
    assert [p.name for p in paths] == ["pilots-turin.yaml", "pilots-malmo.yaml"]
    assert (tmp_path / "pilots-turin.keys").stat().st_mode & 0o077 == 0
    for path in paths:
        loaded = load_inventory(path)  # provisioning's own loader and reference checks
        assert loaded.inventory.tenants[0].meters
    written = load_fleet(paths[0])
    written.extend(load_fleet(paths[1]))
    assert _identity(written) == _identity(generated_fleet(["turin", "malmo"], 0.01, 5))


def test_example_inventories_are_simulated_with_their_ids_and_keys() -> None:
    fleet = load_fleet(EXAMPLES / "turin.yaml")
    fleet.extend(load_fleet(EXAMPLES / "malmo.yaml"))
    ids = {m.id for m in fleet.meters}
    assert {"TO-DH-001", "TO-W-0006", "TO-EL-002", "TO-SS-001-DLMS", "TO-NIALM-001", "TO-ENNOVA-001",
            "MA-E350-0001", "MA-PV-0002", "MA-ECH-02", "MA-DH-0003"} <= ids
    keys = dict(line.split("=", 1) for line in (EXAMPLES / "keys" / "turin-demo.keys").read_text().splitlines()
                if line and not line.startswith("#"))
    assert fleet.get("TO-W-0001").keys["aes"].hex().upper() == keys["TO-W-0001"]
    assert fleet.get("TO-SS-001-DLMS").keys["guek"].hex().upper() == keys["TO-SS-001.guek"]
    assert fleet.get("TO-EL-001").system_title == bytes.fromhex("4D4D4D0000000001")
    run = run_simulation(fleet, duration=120)
    devices = {e.channel.rsplit("/", 1)[1] for e in run.of("dlms")}
    assert devices == {fleet.get(i).device_id for i in ("TO-EL-001", "TO-EL-002", "TO-SS-001-DLMS", "TO-SS-002-DLMS")}
    for meter in fleet.meters:  # the ids the agents know the meters by are the inventory's
        assert meter.device_id in {m.device_id or m.id for t in load_inventory(EXAMPLES / f"{meter.pilot}.yaml")
                                   .inventory.tenants for m in t.meters}
    assert {e.channel.split("/")[1] for e in run.emissions if e.transport == "mqtt"} == {
        "iren-dh-mbus", "iren-water-wmbus", "iren-elec-dlms", "iren-grid-dlms", "eon-e350", "eon-pv", "eon-ss1",
        "eon-ss2", "eon-dh"}


def test_sent_counts_are_the_emissions(small_run: Run) -> None:
    counted: dict[str, int] = {}
    for e in small_run.emissions:
        counted[e.family] = counted.get(e.family, 0) + e.readings
    assert small_run.truth["sent"]["readings"] == counted
    # every meter reports on its interval: heat and water every 5 min, ST-I every 15 s, substations at 1 Hz
    assert counted["mbus"] == 50 * 3 and counted["wmbus"] == 50 * 3
    outage = small_run.injected("outage")
    turin_out = next(o for o in outage if o["params"]["pilot"] == "turin")
    silent = (turin_out["end"] - turin_out["start"]) // 15 * len(turin_out["params"]["meters"])
    assert 50 * 60 + 900 - silent - 2 <= counted["dlms"] <= 50 * 60 + 900 - silent + 2
