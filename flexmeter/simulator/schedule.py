"""What the simulator injects, and when: leaks, outages, meter replacements, low ΔT, network losses.

The schedule is drawn from the seed and the run window only, before the run, and written whole into the
ground truth, so a test (or the business service's results) can be checked against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from flexmeter.simulator.fleet import Fleet, Role, SimMeter, stable_int


@dataclass(frozen=True)
class Injection:
    kind: str          # leak | outage | replacement | low_delta_t | losses
    target: str        # meter id (leak, replacement, low_delta_t), building (outage), substation (losses)
    start: int         # epoch seconds
    end: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def active(self, epoch: int) -> bool:
        return self.start <= epoch and (self.end is None or epoch < self.end)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _pick(meters: list[SimMeter], seed: int, what: str, count: int = 1) -> list[SimMeter]:
    return sorted(meters, key=lambda m: stable_int(seed, what, m.id))[:count]


def default_schedule(fleet: Fleet, seed: int, start: int, duration: int) -> list[Injection]:
    """Leaks from 10 % into the run (1 % of the water meters, at least one), one outage per pilot from 30 %
    (a building's electricity meters, for 20 % of the run, at most 30 min), a heat and a water meter replaced
    at 50 %, one heat meter with a low ΔT from 20 % on, and each substation's loss rate (2-6 %)."""
    out: list[Injection] = []
    at = lambda share: start + int(duration * share)  # noqa: E731
    for sid, meter_id in sorted(fleet.substation_meter.items()):
        bp = 200 + stable_int(seed, sid, "loss") % 401   # basis points: 2.00 % .. 6.00 %
        out.append(Injection("losses", sid, start, None, {"meter": meter_id, "rate_bp": bp, "rate_pct": bp / 100}))
    water = fleet.by_role("water_wmbus")
    for meter in _pick(water, seed, "leak", max(1, len(water) // 100) if water else 0):
        flow = 15 + stable_int(seed, meter.id, "leakflow") % 26
        out.append(Injection("leak", meter.id, at(0.1), None, {"flow_lph": flow, "building": meter.building}))
    pilots = sorted({m.pilot for m in fleet.meters})
    for pilot in pilots:
        customers = [m for m in fleet.meters if m.pilot == pilot and m.role in ("elec_dlms", "e350", "pv")
                     and m.building]
        if not customers:
            continue
        building = _pick(customers, seed, "outage")[0].building
        assert building is not None
        affected = sorted(m.id for m in customers if m.building == building)
        length = max(20, min(1800, int(duration * 0.2)))
        out.append(Injection("outage", building, at(0.3), at(0.3) + length, {"pilot": pilot, "meters": affected}))
    roles: tuple[Role, ...] = ("heat_mbus", "water_wmbus")
    for role in roles:
        for meter in _pick(fleet.by_role(role), seed, "replace"):
            out.append(Injection("replacement", meter.id, at(0.5), None, {"role": role, "new_register": 0}))
    heat = fleet.by_role("heat_mbus") or fleet.by_role("heat_connode")
    for meter in _pick(heat, seed, "lowdt"):
        out.append(Injection("low_delta_t", meter.id, at(0.2), None, {"building": meter.building}))
    return out
