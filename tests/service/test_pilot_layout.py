"""The pilots' layout, as `flexmeter provision apply` writes it (found end to end by
tests/simulator/test_detections.py): meters and topology in sibling service paths, the substation naming its
meter's Device in ``refDevice``, topology provisioned before the service's subscriptions existed, and
the ST-I meters' last gasp as a collapsed single-phase voltage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flexmeter.ngsi import FiwareHeaders, NgsiClient
from flexmeter.ngsi_models import device, substation
from flexmeter.service.config import ServiceConfig
from flexmeter.service.engine import Engine
from flexmeter.service.queries import Queries
from flexmeter.service.readings import observe
from flexmeter.service.store import scope_of, tenant_key
from flexmeter.service.synthetic import SyntheticSubstation
from tests.support.processes import FlexmeterProcess

START = 1_790_000_100.0
Json = dict[str, Any]


def provisioned(meters: int = 6) -> tuple[SyntheticSubstation, dict[str, list[Json]], list[dict[str, list[Json]]]]:
    """Topology per service path as provisioning creates it, and readings per path (supply meter in
    /turin/grid naming its Device, not the Substation; customers in /turin/electricity)."""
    grid = SyntheticSubstation(name="SS1", meters=meters, loss_share=0.03, pv_every=0)
    customers = [e for e in grid.topology() if e["type"] == "Device"]
    assets = [substation("SS1", ref_device=["urn:ngsi-ld:Device:SS1-TR"])]
    assets += [e for e in grid.topology() if e["type"] == "Feeder"]
    supply_device = device("SS1-TR", meter_type="electricity", ref_substation=grid.substation_id)
    topology = {"/turin/assets": assets, "/turin/electricity": customers, "/turin/grid": [supply_device]}
    readings = []
    for batch in grid.run(START, START + 3600.0, 60.0):
        supply = next(e for e in batch if e["id"] == grid.supply_id)
        del supply["refTargetDevice"]
        supply["refDevice"] = {"type": "Relationship", "value": ["urn:ngsi-ld:Device:SS1-TR"]}
        readings.append({"/turin/grid": [supply], "/turin/electricity": [e for e in batch if e is not supply]})
    return grid, topology, readings


def notify(engine: Engine, tenant: str, by_path: dict[str, list[Json]]) -> None:
    for path, entities in by_path.items():
        engine.notify(tenant, path, {"subscriptionId": "s", "data": entities})


def losses(engine: Engine, tenant: str, area: str) -> list[Json]:
    engine.settle()
    return Queries(engine.store, engine.config).balances(tenant_key(tenant, "/turin"), area, 0.0, 4e9)


def test_scope_of_a_service_path() -> None:
    assert scope_of("/turin/electricity") == scope_of("/turin/#") == scope_of("/turin") == "/turin"
    assert scope_of("/") == scope_of("") == scope_of("/#") == "/"
    assert scope_of("/malmo/lv,/malmo/pv") == "/malmo"
    assert tenant_key("iren", "/turin/grid") == tenant_key("iren", "/turin/assets") == "iren|/turin"


def test_a_substation_whose_meters_and_topology_are_in_sibling_paths_balances(engine: Engine, tenant: str) -> None:
    grid, topology, readings = provisioned()
    notify(engine, tenant, topology)
    for batch in readings:
        notify(engine, tenant, batch)
    rows = losses(engine, tenant, grid.substation_id)
    assert len(rows) == 4  # the four quarters of the hour
    for row in rows:
        # the Substation lists its meter's Device in refDevice: it is not a supply "measurement" itself
        assert row["lossesPercent"] == pytest.approx(3.0, abs=0.1)
        assert row["metersExpected"] == row["metersReported"] == 6 and not row["estimated"]
    # results go to the scope's path, inside the pilot's /turin/# subscriptions
    assert {tk for (tk,) in engine.store.query("SELECT DISTINCT tk FROM outbox")} == {f"{tenant}|/turin"}


@pytest.fixture
def engine_with_broker(tmp_path: Path, broker_process: FlexmeterProcess) -> Iterator[Engine]:
    core = Engine(ServiceConfig(data_dir=tmp_path / "service", ngsi_url=broker_process.url)).start()
    try:
        yield core
    finally:
        core.stop()


def test_topology_provisioned_before_the_subscriptions_is_read_from_the_broker(
        engine_with_broker: Engine, broker_process: FlexmeterProcess, tenant: str) -> None:
    grid, topology, readings = provisioned()
    client = NgsiClient(broker_process.url)
    try:
        for path, entities in topology.items():  # in the broker only: never notified to the service
            client.batch_update(entities, "append", headers=FiwareHeaders(tenant, path))
    finally:
        client.close()
    for batch in readings:
        notify(engine_with_broker, tenant, batch)
    rows = losses(engine_with_broker, tenant, grid.substation_id)
    assert len(rows) == 4
    assert all(row["lossesPercent"] == pytest.approx(3.0, abs=0.1) for row in rows)


def test_a_single_phase_voltage_collapse_is_a_last_gasp() -> None:
    def reading(volts: float) -> Json:
        return {"id": "urn:ngsi-ld:ACMeasurement:TO-EL-1", "type": "ACMeasurement",
                "TimeInstant": {"type": "DateTime", "value": "2026-11-24T11:57:00.000Z"},
                "totalActiveEnergyImport": {"type": "Number", "value": 20541.503},
                "phaseVoltage": {"type": "StructuredValue", "value": {"L": volts},
                                 "metadata": {"unitCode": {"type": "Text", "value": "VLT"}}}}

    assert observe(reading(0.0)).supply == [("", True)]  # the DLMS agent's single-phase key is "L"
    assert observe(reading(229.8)).supply == [("", False)]
