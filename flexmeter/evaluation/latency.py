"""Latency from emission to each hop, and the counts over time.

* broker: exact per reading (the local receiver's arrival time of each (entity, TimeInstant));
* time series: exact per reading for a sample of *probe* meters, whose rows are polled from the
  QuantumLeap API every ``interval`` s (arrival = midpoint between the answer that first showed the row
  and the previous poll, or the emission if later: resolution ± interval/2);
* service: the service exposes counts, not per-reading times, so its latency is read off the curves:
  the k-th reading it counted arrived when its counter reached k, and was emitted at the k-th emission
  time (first in, first out; an estimate, at the counter's sampling resolution).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests

from flexmeter.evaluation.hops import iso_ms


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of an unsorted sequence; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary_ms(latencies_s: Sequence[float]) -> dict[str, float | int | None]:
    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value * 1000, 1)

    return {"samples": len(latencies_s), "p50_ms": ms(percentile(latencies_s, 0.50)),
            "p95_ms": ms(percentile(latencies_s, 0.95)), "p99_ms": ms(percentile(latencies_s, 0.99)),
            "max_ms": ms(max(latencies_s)) if latencies_s else None}


def curve_latencies(emitted_ms: Sequence[int], curve: Sequence[tuple[float, float]]) -> list[float]:
    """Latencies (s) from a counter curve [(time s, count)] and the ordered emission times (ms)."""
    out: list[float] = []
    previous_t, previous_count = None, 0
    for t, count in curve:
        reached = min(int(count), len(emitted_ms))
        if reached > previous_count:
            for k in range(previous_count, reached):
                emitted = emitted_ms[k] / 1000
                # it arrived after the previous sample and after its emission, at or before this sample
                earliest = min(t, emitted if previous_t is None else max(previous_t, emitted))
                out.append(max(0.0, (t + earliest) / 2 - emitted))
            previous_count = reached
        previous_t = t
    return out


@dataclass
class Timeline:
    """Samples of named counters every ``interval`` s (the throughput curves of the report)."""

    read: Callable[[], dict[str, float | None]]
    interval: float = 0.2
    points: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        try:
            values = {k: v for k, v in self.read().items() if v is not None}
        except requests.RequestException:
            return
        self.points.append((time.time(), values))

    def start(self) -> Timeline:
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def curve(self, name: str) -> list[tuple[float, float]]:
        return [(t, values[name]) for t, values in self.points if name in values]


@dataclass
class ProbePoller:
    """Polls the time series for the probe meters' new rows and timestamps them."""

    ql_url: str
    headers: dict[str, str]
    entity_type: str
    attr: str
    entity_ids: list[str]
    since_ms: int
    interval: float = 0.1
    arrivals: dict[tuple[str, int], float] = field(default_factory=dict)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProbePoller:
        self._thread = threading.Thread(target=self._run, name="ql-probes", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        session = requests.Session()
        last_seen = {entity: self.since_ms for entity in self.entity_ids}
        previous = time.time()
        params: dict[str, str | int] = {"id": ",".join(self.entity_ids), "limit": 10000}
        while not self._stop.is_set():
            began = time.time()
            try:
                self.poll(session, params, last_seen, previous)
            except (requests.RequestException, ValueError, KeyError):
                self.errors += 1
            previous = began
            self._stop.wait(max(0.0, self.interval - (time.time() - began)))

    def poll(self, session: requests.Session, params: dict[str, str | int], last_seen: dict[str, int],
             previous: float) -> None:
        start = min(last_seen.values()) - 5000
        from_date = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1000)) + f".{start % 1000:03d}Z"
        response = session.get(f"{self.ql_url}/v2/types/{self.entity_type}/attrs/{self.attr}",
                               headers=self.headers, timeout=10, params={**params, "fromDate": from_date})
        now = time.time()
        if response.status_code == 404:
            return
        response.raise_for_status()
        for entity in response.json().get("entities", []):
            entity_id = str(entity["entityId"])
            for index in entity.get("index", []):
                key = (entity_id, iso_ms(str(index)))
                if key not in self.arrivals:
                    # between the previous poll (or the emission, if later) and this answer
                    earliest = min(now, max(previous, key[1] / 1000))
                    self.arrivals[key] = (now + earliest) / 2
                    last_seen[entity_id] = max(last_seen.get(entity_id, 0), key[1])

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def count(self) -> int:
        return len(self.arrivals)

    def latencies(self) -> list[float]:
        return [arrival - emitted / 1000 for (_, emitted), arrival in self.arrivals.items()]

