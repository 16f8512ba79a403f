"""Synthetic pilots with known answers: entities exactly as the agents and provisioning write them.

Used by the tests (known-answer checks) and by ``flexmeter bench service``. A substation of N customer
meters (some with PV) gets a supply meter whose registers are built so that the network losses are a
chosen share of the energy fed in: ``losses = share x (delivered + produced)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flexmeter.ngsi_models import (
    GeoPoint,
    ac_measurement,
    building,
    device,
    feeder,
    heat_meter_observation,
    substation,
    three_phase_ac_measurement,
    water_consumption_observed,
)

Json = dict[str, Any]
WHERE = GeoPoint(7.6869, 45.0703)


def dec(value: float, places: int = 4) -> Decimal:
    return Decimal(f"{value:.{places}f}")


def when(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass
class SyntheticSubstation:
    """``meters`` customers under one substation (two feeders), every ``pv_every``-th with PV."""

    name: str = "S1"
    meters: int = 40
    loss_share: float = 0.03
    pv_every: int = 5
    seed: int = 1
    feeders: int = 2
    _imports: list[float] = field(default_factory=list)
    _exports: list[float] = field(default_factory=list)
    supply_import: float = 1000.0
    supply_export: float = 0.0

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self._rng = rng
        self._imports = [rng.uniform(100, 5000) for _ in range(self.meters)]
        self._exports = [0.0] * self.meters
        self._base_w = [rng.uniform(200, 2500) for _ in range(self.meters)]

    @property
    def substation_id(self) -> str:
        return f"urn:ngsi-ld:Substation:{self.name}"

    def feeder_id(self, number: int) -> str:
        return f"urn:ngsi-ld:Feeder:{self.name}-F{number}"

    def meter_id(self, index: int) -> str:
        return f"urn:ngsi-ld:ACMeasurement:{self.name}-M{index:03d}"

    @property
    def supply_id(self) -> str:
        return f"urn:ngsi-ld:ThreePhaseAcMeasurement:{self.name}-TR"

    def topology(self) -> list[Json]:
        """Substation, feeders and one Device per customer meter with its relationships."""
        entities = [substation(self.name, name=f"Substation {self.name}")]
        entities += [feeder(f"{self.name}-F{f}", ref_substation=self.substation_id) for f in range(1, self.feeders + 1)]
        for i in range(self.meters):
            entities.append(device(
                f"{self.name}-M{i:03d}", meter_type="electricity", ref_substation=self.substation_id,
                ref_feeder=self.feeder_id(1 + i % self.feeders)))
        return entities

    def step(self, t: float, seconds: float) -> list[Json]:
        """Advance every register by ``seconds`` of consumption and return the readings at ``t``."""
        consumed = produced = 0.0
        hour = (t % 86400) / 3600.0
        sun = max(0.0, 1.0 - abs(hour - 12.0) / 6.0)
        entities: list[Json] = []
        for i in range(self.meters):
            load_w = self._base_w[i] * (0.8 + 0.4 * self._rng.random())
            pv_w = 3000.0 * sun if self.pv_every and i % self.pv_every == 0 else 0.0
            net = load_w - pv_w
            imported = max(net, 0.0) * seconds / 3.6e6
            exported = max(-net, 0.0) * seconds / 3.6e6
            self._imports[i] += imported
            self._exports[i] += exported
            consumed += imported
            produced += exported
            entities.append(ac_measurement(
                f"{self.name}-M{i:03d}", observed_at=when(t), location=WHERE, phase_type="singlePhase",
                ref_device=[f"urn:ngsi-ld:Device:{self.name}-M{i:03d}"],
                total_active_energy_import=dec(self._imports[i], 6),
                total_active_energy_export=dec(self._exports[i], 6),
                total_active_power=dec(net, 1)))
        delivered = consumed / (1.0 - self.loss_share) - produced
        self.supply_import += max(delivered, 0.0)
        self.supply_export += max(-delivered, 0.0)
        entities.append(three_phase_ac_measurement(
            f"{self.name}-TR", observed_at=when(t), ref_target_device=[self.substation_id],
            total_active_energy_import=dec(self.supply_import, 6),
            total_active_energy_export=dec(self.supply_export, 6)))
        return entities

    def run(self, start: float, end: float, interval: float) -> Iterator[list[Json]]:
        """Readings of every meter every ``interval`` seconds from ``start`` to ``end`` inclusive."""
        t = start
        yield self.step(t, 0.0)
        while t + interval <= end:
            t += interval
            yield self.step(t, interval)


def heat_reading(meter: str, t: float, forward: float, back: float, energy_kwh: float, power_kw: float,
                 flow_m3h: float = 1.0) -> Json:
    return heat_meter_observation(
        meter, observed_at=when(t), forward_temperature=dec(forward, 2), return_temperature=dec(back, 2),
        temperature_difference=dec(forward - back, 2), total_consumption=dec(energy_kwh, 3),
        thermal_power=dec(power_kw, 3), volume_flow=dec(flow_m3h, 3))


def water_reading(meter: str, t: float, litres: int, flow_m3h: float) -> Json:
    return water_consumption_observed(meter, observed_at=when(t), water_consumption=litres, flow=dec(flow_m3h, 4))


def heat_building(building_id: str, contracted_kw: float) -> Json:
    return building(building_id, contracted_heat_power=dec(contracted_kw, 1), customers_count=12)


def demo_pilot(start: float) -> list[list[Json]]:
    """A small mixed pilot for the dashboard and the docs: a substation of 10 meters (1.5 h at 60 s), a
    district-heating building with a low ΔT for its first two hours, a water meter leaking for four nights
    before ``start``, and one customer meter whose last gasp leaves an open outage."""
    batches: list[list[Json]] = []
    grid = SyntheticSubstation(name="S1", meters=10, loss_share=0.04)
    heat_device = device("H1", meter_type="heat", ref_building="urn:ngsi-ld:Building:B1")
    batches.append([*grid.topology(), heat_device, heat_building("B1", 50.0)])
    batches.extend(grid.run(start, start + 5400.0, 60.0))
    energy = 12_000.0
    heat: list[Json] = []
    for k in range(37):
        t = start + 300.0 * k
        back = 55.0 if k < 24 else 40.0
        energy += 45.0 * 300.0 / 3600.0
        entity = heat_reading("H1", t, 70.0, back, energy, 45.0 + (k % 5))
        entity["refDevice"] = {"type": "Relationship", "value": "urn:ngsi-ld:Device:H1"}
        heat.append(entity)
    batches.append(heat)
    litres = 150_000.0
    water: list[Json] = []
    t = start - 4 * 86400.0
    while t <= start:
        hour = (t % 86400.0) / 3600.0
        flow = 0.012 if 1 <= hour < 5 else 0.25
        litres += flow * 1000.0 * 0.25
        water.append(water_reading("W1", t, int(litres), flow))
        t += 900.0
    batches.append(water)
    gasp = ac_measurement("S1-M002", observed_at=when(start + 5430.0), location=WHERE, phase_type="singlePhase",
                          ref_device=["urn:ngsi-ld:Device:S1-M002"])
    gasp["status"] = {"type": "Text", "value": "powerOutage"}
    batches.append([gasp])
    return batches
