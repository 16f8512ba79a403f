"""Deterministic load, heat, water and appliance models: pure functions of (seed, meter, time).

Nothing here keeps state or draws from a shared random generator, so a value does not depend on which other
meters exist or in what order they are computed: the same ``--seed`` gives the same readings at any scale.
Integer units keep the balances exact: power in W, energy in joules (W·s), water in millilitres, heat
flow in l/h and temperatures in 0.01 °C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flexmeter.simulator.fleet import stable_int

STEP = 10
"""Seconds for which an electricity load is constant (the E350's reading interval)."""

WATER_HEAT_CAPACITY = 1163
"""c of water, in units of 0.001 Wh/(l·K): P[W] = flow[l/h] x ΔT[K] x 1.163 (EN 1434's k ≈ 1.163 kWh/(m³·K))."""

HEAT_SCALE = 100_000
"""P[W] = flow x ΔT[0.01 K] x 1163 / HEAT_SCALE: the power of an operating point, exactly."""


def unit(*parts: object) -> float:
    """A number in [0, 1) from the parts (deterministic)."""
    return stable_int(*parts) / 2.0**64


def local_hour(epoch: int, utc_offset_s: int) -> float:
    return ((epoch + utc_offset_s) % 86400) / 3600.0


_HOUSEHOLD = (0.35, 0.3, 0.28, 0.27, 0.27, 0.3, 0.55, 0.95, 0.9, 0.6, 0.5, 0.5, 0.6, 0.55, 0.5, 0.5, 0.6,
              0.85, 1.15, 1.3, 1.2, 1.0, 0.75, 0.5)
"""Relative household load per local hour (winter weekday), mean ~0.6 of the evening peak."""


def household_power(seed: int, meter_id: str, step: int, hour: float, peak_w: float) -> int:
    """Active power (W, ≥ 0) of a household (or building) load during one STEP."""
    shape = _HOUSEHOLD[int(hour) % 24]
    noise = 0.7 + 0.6 * unit(seed, meter_id, step, "p")
    return max(20, int(peak_w * shape * noise))


def pv_power(seed: int, meter_id: str, step: int, hour: float, kwp: float) -> int:
    """PV production (W): a bell between 08:00 and 16:00 local (November), with passing clouds."""
    if not 8.0 <= hour < 16.0:
        return 0
    sun = math.sin(math.pi * (hour - 8.0) / 8.0)
    clouds = 0.35 + 0.65 * unit(seed, meter_id, step // 6, "cloud")
    return int(kwp * 1000 * 0.6 * sun * clouds)


def outdoor_temperature(hour: float) -> float:
    """°C, a November day: 1 °C at 05:00, 9 °C at 15:00."""
    return 5.0 + 4.0 * math.sin(2 * math.pi * (hour - 9.0) / 24.0)


@dataclass(frozen=True)
class HeatPoint:
    """A district-heating operating point: what the meter measures until its next reading."""

    flow_lph: int
    forward_c: int   # 0.01 °C
    return_c: int    # 0.01 °C

    @property
    def delta_c(self) -> int:
        return self.forward_c - self.return_c

    @property
    def power_scaled(self) -> int:
        """Power x HEAT_SCALE (W): exact."""
        return self.flow_lph * self.delta_c * WATER_HEAT_CAPACITY

    @property
    def power_w(self) -> float:
        return self.power_scaled / HEAT_SCALE


def heat_point(seed: int, meter_id: str, slot: int, hour: float, contracted_kw: float,
               low_delta_t: bool = False) -> HeatPoint:
    """The operating point for a heat demand that follows the outdoor temperature (design -8 °C)."""
    out = outdoor_temperature(hour)
    demand = min(1.0, max(0.08, (18.0 - out) / 26.0))
    comfort = 1.15 if 6 <= hour < 9 or 17 <= hour < 22 else 0.85
    power_w = contracted_kw * 1000 * demand * comfort * (0.85 + 0.3 * unit(seed, meter_id, slot, "h"))
    forward_c = int((70.0 + 0.8 * (18.0 - out)) * 100) + int(100 * unit(seed, meter_id, slot, "tf"))
    delta_c = 600 + int(100 * unit(seed, meter_id, slot, "dt")) if low_delta_t else (
        2200 + int(600 * unit(seed, meter_id, slot, "dt")))
    flow = max(1, round(power_w * HEAT_SCALE / (delta_c * WATER_HEAT_CAPACITY)))
    return HeatPoint(flow, forward_c, forward_c - delta_c)


_WATER = (0.05, 0.0, 0.0, 0.0, 0.0, 0.1, 1.2, 2.6, 1.8, 1.0, 0.8, 0.9, 1.3, 1.1, 0.8, 0.7, 0.8, 1.0, 1.5,
          1.9, 1.6, 1.3, 0.8, 0.3)
"""Relative water use per local hour (mean 1): nights are dry, so a leak shows as a night minimum flow."""


def water_use_ml(seed: int, meter_id: str, slot: int, hour: float, seconds: int, customers: int) -> int:
    """Millilitres drawn during ``seconds`` (150 l per person-day, 2 persons per customer)."""
    shape = _WATER[int(hour) % 24]
    if shape == 0.0:
        return 0
    mean = customers * 2 * 150_000 / 86400 * shape * seconds
    return int(mean * 2 * unit(seed, meter_id, slot, "w"))


@dataclass(frozen=True)
class Appliance:
    name: str
    power_w: int
    reactive_var: int
    period_s: int     # length of the slot in which it runs at most once
    duration_s: int
    probability: float
    hours: tuple[int, int] = (0, 24)


APPLIANCES: tuple[Appliance, ...] = (
    Appliance("fridge", 110, 45, 2700, 900, 1.0),
    Appliance("kettle", 2000, 0, 3600, 180, 0.35, (6, 23)),
    Appliance("washing machine", 480, 210, 43200, 3600, 0.5, (8, 22)),
    Appliance("oven", 2300, 0, 86400, 2400, 0.8, (17, 21)),
    Appliance("television", 95, -25, 14400, 7200, 0.7, (18, 24)),
)
"""What the NIALM sensors see switching: ΔP/ΔQ steps the service's load profiling must find."""

NIALM_BASE_W, NIALM_BASE_VAR = 60, 10


def appliance_on(seed: int, sensor: str, appliance: Appliance, epoch: int, utc_offset_s: int) -> bool:
    """Whether an appliance runs at ``epoch``: at most one run per slot, at a deterministic offset."""
    slot = (epoch + utc_offset_s) // appliance.period_s
    if unit(seed, sensor, appliance.name, slot, "p") >= appliance.probability:
        return False
    span = max(1, appliance.period_s - appliance.duration_s)
    start = slot * appliance.period_s + int(span * unit(seed, sensor, appliance.name, slot, "o"))
    local = epoch + utc_offset_s
    if not start <= local < start + appliance.duration_s:
        return False
    hour = (start % 86400) // 3600
    low, high = appliance.hours
    return low <= hour < high


def voltage_dv(seed: int, meter_id: str, epoch: int) -> int:
    """Voltage in 0.1 V around 230 V (±2 V)."""
    return 2300 + int(40 * unit(seed, meter_id, epoch, "v")) - 20
