"""Drive a :class:`~flexmeter.simulator.model.Simulation` against the clock and hand its output to emitters.

Sim time advances ``speed`` times faster than the wall clock (``speed <= 0``: as fast as the machine goes).
When the machine falls behind, the runner does not skip: it sends late and reports the lag. Progress goes
to stderr every few seconds; the run stops after ``duration`` simulated seconds, or on SIGINT/SIGTERM
(``stop``), always flushing the emitters and closing the ground truth.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from flexmeter.simulator.emitters import Emitter
from flexmeter.simulator.model import Simulation

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, simulation: Simulation, emitters: Mapping[str, Emitter], *, speed: float = 1.0,
                 duration: int | None = None, progress_every: float = 5.0, stream: TextIO | None = None,
                 on_second: Callable[[int], None] | None = None) -> None:
        self.sim = simulation
        self.emitters = dict(emitters)
        self.speed = speed
        self.duration = duration
        self.progress_every = progress_every
        self.stream = stream if stream is not None else sys.stderr
        self.stop_event = threading.Event()
        self.on_second = on_second
        self.max_lag = 0.0
        self.wall_seconds = 0.0
        self.sim_seconds = 0

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> dict[str, Any]:
        sim = self.sim
        start_wall = time.monotonic()
        last_progress = start_wall
        t = sim.start
        end = sim.start + self.duration if self.duration is not None else None
        while not self.stop_event.is_set() and (end is None or t < end):
            if self.speed > 0:
                due = start_wall + (t - sim.start) / self.speed
                wait = due - time.monotonic()
                if wait > 0:
                    if self.stop_event.wait(wait):
                        break
                else:
                    self.max_lag = max(self.max_lag, -wait)
            for emission in sim.step(t):
                emitter = self.emitters.get(emission.transport)
                if emitter is not None:
                    emitter.send(emission)
            if self.on_second is not None:
                self.on_second(t)
            t += 1
            now = time.monotonic()
            if self.progress_every and now - last_progress >= self.progress_every:
                last_progress = now
                self._progress(t, now - start_wall)
        self.sim_seconds = t - sim.start
        for emitter in self.emitters.values():
            emitter.close()
        self.wall_seconds = time.monotonic() - start_wall
        return self.summary()

    def _progress(self, t: int, wall: float) -> None:
        sent = sum(sum(e.counts.sent.values()) for e in self.emitters.values())
        delivered = sum(e.counts.readings_delivered for e in self.emitters.values())
        parts = " ".join(f"{name}={sum(e.counts.sent.values())}" for name, e in sorted(self.emitters.items()))
        print(f"simulate: sim +{t - self.sim.start}s, {sent} readings sent ({sent / wall:.0f}/s), {delivered} "
              f"delivered, {parts}, lag {self.max_lag:.2f}s", file=self.stream, flush=True)

    def summary(self) -> dict[str, Any]:
        per_transport = {name: e.counts.to_json() for name, e in sorted(self.emitters.items())}
        sent = sum(sum(e.counts.sent.values()) for e in self.emitters.values())
        delivered = sum(e.counts.readings_delivered for e in self.emitters.values())
        failed = sum(sum(e.counts.failed.values()) for e in self.emitters.values())
        wall = self.wall_seconds or 1e-9
        return {"sim_seconds": self.sim_seconds, "wall_seconds": round(self.wall_seconds, 3),
                "speed": self.speed, "readings_sent": sent, "readings_delivered": delivered,
                "readings_failed": failed, "readings_per_s": round(sent / wall, 1),
                "max_lag_s": round(self.max_lag, 3), "transports": per_transport}
