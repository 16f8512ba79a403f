"""NIALM, honestly simple: switching events in 1 Hz power, grouped into appliance signatures.

1. **Events**: a change of active power between consecutive samples of at least ``min_step`` W is a
   switching event; its size is the difference of the medians of the few samples after and before it
   (robust to one-sample spikes and ramps), for active (ΔP) and reactive (ΔQ) power alike.
2. **Signatures**: switch-on events (ΔP > 0) whose (ΔP, ΔQ) agree within ``tolerance`` (relative, at
   least 10 W / 10 var) are one appliance; the signature is their mean.
3. **Energy**: each switch-on is paired with the next switch-off of the same size (|ΔP|, ΔQ within the
   tolerance); the appliance drew ΔP for that time. Unpaired switch-ons run to the last sample.

This is the textbook Hart (1992) approach: it sees on/off appliances (kettle, oven, heater, pump) and
misses continuously variable ones; the residual is reported as such, not attributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

Sample = tuple[float, float, float]  # t, P (W), Q (var)


@dataclass(frozen=True)
class Event:
    t: float
    delta_p: float
    delta_q: float


@dataclass(frozen=True)
class Signature:
    name: str
    delta_p: float
    delta_q: float
    switch_ons: int
    energy_kwh: float
    on_seconds: float


def switching_events(samples: Sequence[Sample], min_step: float, window: int = 3) -> list[Event]:
    events: list[Event] = []
    i = 1
    while i < len(samples):
        if abs(samples[i][1] - samples[i - 1][1]) >= min_step:
            before = samples[max(0, i - window):i]
            after = samples[i:i + window]
            delta_p = median(s[1] for s in after) - median(s[1] for s in before)
            delta_q = median(s[2] for s in after) - median(s[2] for s in before)
            if abs(delta_p) >= min_step:
                events.append(Event(samples[i][0], delta_p, delta_q))
            i += window
            continue
        i += 1
    return events


def _close(a: tuple[float, float], b: tuple[float, float], tolerance: float) -> bool:
    return (abs(a[0] - b[0]) <= max(tolerance * max(abs(a[0]), abs(b[0])), 10.0)
            and abs(a[1] - b[1]) <= max(tolerance * max(abs(a[1]), abs(b[1]), abs(a[0]) * 0.2), 10.0))


def signatures(events: Sequence[Event], end_time: float, tolerance: float = 0.15) -> list[Signature]:
    """Group switch-ons into signatures and estimate each one's energy (kWh) over the events' span."""
    clusters: list[list[Event]] = []
    for event in (e for e in events if e.delta_p > 0):
        for cluster in clusters:
            centre = (sum(e.delta_p for e in cluster) / len(cluster), sum(e.delta_q for e in cluster) / len(cluster))
            if _close((event.delta_p, event.delta_q), centre, tolerance):
                cluster.append(event)
                break
        else:
            clusters.append([event])
    offs = sorted((e for e in events if e.delta_p < 0), key=lambda e: e.t)
    used: set[int] = set()
    result: list[Signature] = []
    for number, cluster in enumerate(sorted(clusters, key=lambda c: -sum(e.delta_p for e in c) / len(c)), 1):
        centre_p = sum(e.delta_p for e in cluster) / len(cluster)
        centre_q = sum(e.delta_q for e in cluster) / len(cluster)
        energy_ws = on_seconds = 0.0
        for on in sorted(cluster, key=lambda e: e.t):
            match = next((k for k, off in enumerate(offs) if k not in used and off.t > on.t
                          and _close((-off.delta_p, -off.delta_q), (on.delta_p, on.delta_q), tolerance)), None)
            stop = end_time
            if match is not None:
                used.add(match)
                stop = offs[match].t
            on_seconds += stop - on.t
            energy_ws += on.delta_p * (stop - on.t)
        result.append(Signature(f"appliance-{number}", round(centre_p, 1), round(centre_q, 1), len(cluster),
                                energy_ws / 3.6e6, on_seconds))
    return result
