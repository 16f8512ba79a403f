"""Fixtures of the simulator's tests: a small two-pilot run, kept for the whole module (pure model, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from flexmeter.simulator.fleet import Fleet
from flexmeter.simulator.generate import generated_fleet
from flexmeter.simulator.model import Emission, Simulation

START = 1_795_777_200  # 2026-11-27T11:00:00Z
DURATION = 900


@dataclass
class Run:
    fleet: Fleet
    sim: Simulation
    emissions: list[Emission]
    truth: dict[str, Any]

    def of(self, family: str) -> list[Emission]:
        return [e for e in self.emissions if e.family == family]

    def injected(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.truth["injected"] if i["kind"] == kind]


def run_simulation(fleet: Fleet, seed: int = 7, start: int = START, duration: int = DURATION) -> Run:
    sim = Simulation(fleet, seed, start, duration)
    emissions: list[Emission] = []
    for t in range(start, start + duration):
        emissions.extend(sim.step(t))
    return Run(fleet, sim, emissions, sim.finish())


@pytest.fixture(scope="module")
def small_run() -> Run:
    return run_simulation(generated_fleet(["turin", "malmo"], 0.01, 7))
