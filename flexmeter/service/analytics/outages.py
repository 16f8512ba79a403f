"""Outages: supply-status observations per meter → outage intervals → events per affected area.

A meter's supply is observed as ``(t, phase, out)``: a last gasp or a ``powerOutage`` status is
``out=True`` on phase ``""`` (the whole supply); a per-phase outage flag is ``out`` on ``L1``/``L2``/``L3``;
any later ordinary reading (status ``ok``, phase flags false) is a restoration. Observations may arrive
late or twice: the intervals are recomputed from the set of observations, so the result depends only on
that set. An area's outage event is the union of overlapping meter outages in it; it starts with the first
meter out and is restored when the last one is back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    meter: str
    phase: str
    start: float
    end: float | None


@dataclass(frozen=True)
class AreaOutage:
    start: float
    end: float | None
    meters: tuple[str, ...]
    phases: tuple[str, ...]
    customers: int

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def outage_intervals(meter: str, observations: Iterable[tuple[float, str, bool]]) -> list[Interval]:
    """Outage intervals of one meter from its ``(t, phase, out)`` observations (any order, duplicates ok).

    A whole-supply outage also ends when a reading of any phase shows the supply back.
    """
    by_phase: dict[str, list[tuple[float, bool]]] = {}
    for t, phase, out in sorted(set(observations)):
        by_phase.setdefault(phase, []).append((t, out))
    whole_back = sorted(t for t, phase, out in set(observations) if not out)
    intervals: list[Interval] = []
    for phase, points in sorted(by_phase.items()):
        start: float | None = None
        for t, out in points:
            if out and start is None:
                start = t
            elif not out and start is not None:
                intervals.append(Interval(meter, phase, start, t))
                start = None
        if start is not None:
            end = next((t for t in whole_back if t > start), None) if phase == "" else None
            intervals.append(Interval(meter, phase, start, end))
    return intervals


def area_outages(intervals: Sequence[Interval], customers: Mapping[str, int] | None = None) -> list[AreaOutage]:
    """Merge the meter outage intervals of one area into events (overlapping or touching ones merge)."""
    customers = customers or {}
    events: list[AreaOutage] = []
    current: list[Interval] = []
    current_end: float | None = None

    def close() -> None:
        meters = tuple(sorted({i.meter for i in current}))
        events.append(AreaOutage(
            start=min(i.start for i in current),
            end=current_end,
            meters=meters,
            phases=tuple(sorted({i.phase or "all" for i in current})),
            customers=sum(customers.get(m, 1) for m in meters),
        ))

    for interval in sorted(intervals, key=lambda i: i.start):
        if current and current_end is not None and interval.start > current_end:
            close()
            current = []
        if not current:
            current_end = interval.end
        elif current_end is not None:
            current_end = None if interval.end is None else max(current_end, interval.end)
        current.append(interval)
    if current:
        close()
    return events
