"""The service core on known pilots: energy balance, profiles, idempotence, order tolerance, restart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flexmeter.service.config import ServiceConfig
from flexmeter.service.engine import Engine
from flexmeter.service.queries import Queries
from flexmeter.service.store import tenant_key
from flexmeter.service.synthetic import SyntheticSubstation

START = 1_790_000_100.0  # 2026-09-21T14:15:00Z, PV producing


def notify_all(engine: Engine, tenant: str, batches: list[list[dict]]) -> None:
    for batch in batches:
        engine.notify(tenant, "/malmo", {"subscriptionId": "s", "data": batch})


def pilot(meters: int = 40, hours: float = 1.0, interval: float = 60.0) -> tuple[SyntheticSubstation, list[list[dict]]]:
    grid = SyntheticSubstation(meters=meters, loss_share=0.03)
    return grid, list(grid.run(START, START + hours * 3600.0, interval))


def balances(engine: Engine, tenant: str, area: str) -> list[dict]:
    engine.settle()
    return Queries(engine.store, engine.config).balances(tenant_key(tenant, "/malmo"), area, 0.0, 4e9)


def test_forty_meters_with_three_percent_losses(engine: Engine, tenant: str) -> None:
    grid, batches = pilot()
    engine.notify(tenant, "/malmo", {"subscriptionId": "s", "data": grid.topology()})
    notify_all(engine, tenant, batches)
    rows = balances(engine, tenant, grid.substation_id)
    assert len(rows) >= 3
    for row in rows:
        assert row["lossesPercent"] == pytest.approx(3.0, abs=0.1)
        assert row["metersExpected"] == 40 and row["metersReported"] == 40
        assert row["completeness"] == 1.0 and row["estimated"] is False
        assert row["energyProduced"] > 0.1  # PV customers export: their registers enter the balance
    # the result entities (EnergyBalance, ConsumptionProfile) are queued for the broker
    kinds = {r[0].split(":")[2] for r in engine.store.query("SELECT eid FROM outbox")}
    assert {"EnergyBalance", "ConsumptionProfile"} <= kinds


def test_replay_and_shuffle_change_nothing(tmp_path: Path, tenant: str) -> None:
    grid, batches = pilot(meters=10, hours=0.75)
    topology = {"subscriptionId": "s", "data": grid.topology()}
    in_order = Engine(ServiceConfig(data_dir=tmp_path / "a"))
    shuffled = Engine(ServiceConfig(data_dir=tmp_path / "b"))
    try:
        in_order.notify(tenant, "/malmo", topology)
        notify_all(in_order, tenant, batches)
        first = balances(in_order, tenant, grid.substation_id)
        outbox = in_order.store.query("SELECT eid, body FROM outbox ORDER BY eid")
        stats = in_order.notify(tenant, "/malmo", {"subscriptionId": "s", "data": batches[3]})
        assert stats["new"] == 0 and stats["duplicates"] == len(batches[3])
        notify_all(in_order, tenant, batches)  # everything delivered twice
        assert balances(in_order, tenant, grid.substation_id) == first
        assert in_order.store.query("SELECT eid, body FROM outbox ORDER BY eid") == outbox
        assert in_order.jobs.pending() == 0

        late = [entity for batch in batches for entity in batch]
        random.Random(7).shuffle(late)
        shuffled.notify(tenant, "/malmo", topology)
        for i in range(0, len(late), 37):
            shuffled.notify(tenant, "/malmo", {"subscriptionId": "s", "data": late[i:i + 37]})
        assert balances(shuffled, tenant, grid.substation_id) == first
    finally:
        in_order.stop()
        shuffled.stop()


def test_missing_meter_is_estimated_after_the_grace(engine: Engine, tenant: str) -> None:
    grid, batches = pilot(meters=10, hours=1.5)
    engine.notify(tenant, "/malmo", {"subscriptionId": "s", "data": grid.topology()})
    silent = grid.meter_id(3)
    cut = len(batches) // 2
    notify_all(engine, tenant, batches[:cut])
    notify_all(engine, tenant, [[e for e in b if e["id"] != silent] for b in batches[cut:]])
    rows = balances(engine, tenant, grid.substation_id)
    late = [r for r in rows if r["metersReported"] == 9]
    assert late, rows
    assert all(r["estimated"] and r["completeness"] == 0.9 for r in late)
    assert all(abs(r["lossesPercent"] - 3.0) < 1.5 for r in late)  # the estimate is the meter's recent mean


def test_profiles_hourly_and_state_survives_a_restart(tmp_path: Path, tenant: str) -> None:
    grid, batches = pilot(meters=3, hours=2.5)
    config = ServiceConfig(data_dir=tmp_path / "svc")
    first = Engine(config)
    notify_all(first, tenant, batches[: len(batches) // 2])
    first.stop()
    second = Engine(config)
    try:
        notify_all(second, tenant, batches[len(batches) // 2:])
        second.settle()
        queries = Queries(second.store, config)
        tk = tenant_key(tenant, "/malmo")
        quarter = queries.profile(tk, grid.meter_id(1), "PT15M", 0, 4e9)
        hourly = queries.profile(tk, grid.meter_id(1), "PT1H", 0, 4e9)
        complete_hours = [h for h in hourly if h["complete"]]
        assert len(complete_hours) >= 1
        for hour in complete_hours:
            inside = [q["consumption"] for q in quarter if hour["from"] <= q["from"] < hour["to"]]
            assert len(inside) == 4
            assert hour["consumption"] == pytest.approx(sum(inside), abs=1e-3)
        # the register increase over the whole run equals the sum of the quarters it covers
        assert all(not q["estimated"] and q["completeness"] > 0.9 for q in quarter)
    finally:
        second.stop()


def test_retention_prunes_old_raw_readings_only(tmp_path: Path, tenant: str) -> None:
    engine = Engine(ServiceConfig(data_dir=tmp_path / "svc", retention_days=0.01))  # 864 s
    try:
        _, batches = pilot(meters=2, hours=0.5)
        notify_all(engine, tenant, batches)
        engine.settle()
        before = engine.store.one("SELECT count(*) FROM readings")[0]
        profiles = engine.store.one("SELECT count(*) FROM profiles")[0]
        assert engine.jobs.prune() > 0
        after = engine.store.one("SELECT count(*) FROM readings")[0]
        assert 0 < after < before
        assert engine.store.one("SELECT min(t) FROM readings")[0] >= START + 1800.0 - 864.0
        assert engine.store.one("SELECT count(*) FROM profiles")[0] == profiles
    finally:
        engine.stop()


def test_a_bad_entity_is_rejected_alone(engine: Engine, tenant: str) -> None:
    _, batches = pilot(meters=2, hours=0.1)
    stats = engine.notify(tenant, "/", {"subscriptionId": "s", "data": [{"type": "ACMeasurement"}, *batches[0]]})
    assert stats["rejected"] == 1 and stats["new"] == len(batches[0])
