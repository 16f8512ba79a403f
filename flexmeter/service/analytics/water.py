"""Water: night minimum flow, leak suspicion over consecutive nights, backflow.

A household uses no water for some minutes every night; a **night minimum flow** above a few litres per
hour that persists night after night is the classic sign of a leak (a running cistern, a burst pipe). The
night minimum is the lowest flow over the night window, from the meter's flow readings, or, without
those, from the volume register (the lowest mean flow between consecutive readings, which can only
overstate the true minimum over short spans). A leak is suspected on the ``nights``-th consecutive night
above the threshold, and not before. **Backflow** is any negative flow or an increase of the reverse
volume register.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

Point = tuple[float, float]


def night_minimum_flow(flows_lph: Sequence[Point], volumes_l: Sequence[Point]) -> float | None:
    """The night's minimum flow in l/h (flow readings win; else derived from the volume register)."""
    if flows_lph:
        return max(min(v for _, v in flows_lph), 0.0)
    rates = [
        (vb - va) / (tb - ta) * 3600.0
        for (ta, va), (tb, vb) in itertools.pairwise(volumes_l)
        if tb > ta and vb >= va
    ]
    return min(rates) if rates else None


@dataclass(frozen=True)
class LeakSuspicion:
    first_night: date
    flagged_night: date
    minima_lph: tuple[float, ...]


def leak_suspicion(minima: Mapping[date, float], threshold_lph: float, nights: int = 3) -> LeakSuspicion | None:
    """The first run of ``nights`` consecutive nights whose minimum exceeds the threshold (flagged on the
    last night of the run); None when there is none yet."""
    run: list[date] = []
    for night in sorted(minima):
        if minima[night] > threshold_lph and (not run or night - run[-1] == timedelta(days=1)):
            run.append(night)
        elif minima[night] > threshold_lph:
            run = [night]
        else:
            run = []
        if len(run) == nights:
            return LeakSuspicion(run[0], run[-1], tuple(minima[n] for n in run))
    return None


def backflow(flows_m3h: Sequence[Point], reverse_volume_l: Sequence[Point]) -> tuple[float, float, str] | None:
    """``(first time, amount, unit)`` of backflow in the readings (a reverse flow in l/h, or the reverse
    register's increase in l), else None."""
    for t, flow in flows_m3h:
        if flow < 0:
            return t, -flow * 1000.0, "l/h"
    for (_, va), (tb, vb) in itertools.pairwise(reverse_volume_l):
        if vb > va:
            return tb, vb - va, "l"
    return None
