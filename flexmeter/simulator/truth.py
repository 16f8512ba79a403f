"""The ground truth of a run: what was injected and the exact quantities the service must find.

Written as one JSON document (``--truth FILE``; docs/simulator.md lists its fields). Energies are kept in
integer joules, so the balance identity holds exactly; kWh and % are derived for reading.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from flexmeter.simulator.frames import iso

if TYPE_CHECKING:
    from flexmeter.simulator.fleet import Fleet
    from flexmeter.simulator.physics import Appliance, HeatPoint
    from flexmeter.simulator.schedule import Injection

MAX_SAMPLES = 2000
"""Heat and water samples kept per meter (the first ones): enough for tests, bounded for long runs."""


class GroundTruth:
    def __init__(self, seed: int, start: int, fleet: Fleet, schedule: list[Injection]) -> None:
        self.seed, self.start, self.fleet, self.schedule = seed, start, fleet, schedule
        self.sent: dict[str, int] = defaultdict(int)
        self.messages: dict[str, int] = defaultdict(int)
        self.balances: dict[str, dict[int, list[int]]] = defaultdict(dict)
        self.heat_samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.water_samples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.replacements: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.energy_j: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def count(self, family: str, readings: int) -> None:
        self.sent[family] += readings
        self.messages[family] += 1

    def balance(self, substation: str, window: int, cust_import_j: int, cust_export_j: int, losses_j: int,
                delivered_import_j: int, delivered_export_j: int) -> None:
        row = self.balances[substation].setdefault(window, [0, 0, 0, 0, 0])
        for i, value in enumerate((cust_import_j, cust_export_j, losses_j, delivered_import_j, delivered_export_j)):
            row[i] += value

    def heat(self, meter: str, t: int, energy_wh: int, point: HeatPoint) -> None:
        samples = self.heat_samples[meter]
        if len(samples) < MAX_SAMPLES:
            samples.append({"time": t, "energy_Wh": energy_wh, "flow_lph": point.flow_lph,
                            "forward_cC": point.forward_c, "return_cC": point.return_c,
                            "power_W": point.power_w})

    def water(self, meter: str, t: int, volume_l: int, flow_lph: int, leaked_ml: int) -> None:
        samples = self.water_samples[meter]
        if len(samples) < MAX_SAMPLES:
            samples.append({"time": t, "volume_l": volume_l, "flow_lph": flow_lph, "leak_ml": leaked_ml})

    def replaced(self, meter: str, t: int, old_register: int, quantity: str) -> None:
        self.replacements.append({"meter": meter, "time": iso(t), "epoch": t, "quantity": quantity,
                                  "old_register": old_register, "new_register": 0})

    def switch(self, sensor: str, appliance: Appliance, t: int, on: bool) -> None:
        sign = 1 if on else -1
        self.events.append({"sensor": sensor, "appliance": appliance.name, "time": iso(t), "epoch": t,
                            "on": on, "dP_W": sign * appliance.power_w, "dQ_var": sign * appliance.reactive_var})

    def appliance_energy(self, sensor: str, appliance: str, joules: int) -> None:
        self.energy_j[sensor][appliance] += joules

    def to_json(self, end: int) -> dict[str, Any]:
        substations = {}
        for sid, windows in sorted(self.balances.items()):
            rows = []
            for window, (ci, ce, loss, di, de) in sorted(windows.items()):
                rows.append({"start": iso(window), "epoch": window, "customers_import_J": ci,
                             "customers_export_J": ce, "losses_J": loss, "delivered_import_J": di,
                             "delivered_export_J": de, "customers_net_kWh": round((ci - ce) / 3.6e6, 6),
                             "delivered_net_kWh": round((di - de) / 3.6e6, 6),
                             "losses_kWh": round(loss / 3.6e6, 6),
                             # losses over the energy entering the LV network: substation import + PV injection
                             "loss_pct": round(100 * loss / (di + ce), 4) if di + ce else None})
            substations[sid] = {"meter": self.fleet.substation_meter.get(sid),
                                "customers": self.fleet.substation_customers.get(sid, []), "windows": rows}
        return {
            "seed": self.seed, "start": iso(self.start), "end": iso(end), "start_epoch": self.start,
            "end_epoch": end, "fleet": self.fleet.counts(),
            "injected": [i.to_json() | {"start_time": iso(i.start)} for i in self.schedule],
            "replacements": self.replacements,
            "substations": substations,
            "heat": dict(self.heat_samples), "water": dict(self.water_samples),
            "nialm": {"events": self.events,
                      "energy_Wh": {s: {a: round(j / 3600, 3) for a, j in e.items()}
                                    for s, e in self.energy_j.items()}},
            "sent": {"readings": dict(self.sent), "messages": dict(self.messages)},
        }
