"""District heating: ΔT per interval, the low-ΔT alarm, daily peak against the contracted power.

A substation that returns water too warm (small forward - return ΔT) wastes pumping energy and network
capacity; operators want it flagged once it lasts, not on one reading. Per 15-min interval the ΔT is the
flow-weighted mean of the readings (plain mean without flow). The alarm is raised at the end of the
``intervals``-th consecutive interval below the threshold and stays raised until an interval is above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def interval_delta_t(samples: Sequence[tuple[float, float, float | None]]) -> float | None:
    """Mean ΔT (K) of ``(forward °C, return °C, flow or None)`` samples, flow-weighted when flows exist."""
    if not samples:
        return None
    weighted = [(f - r, w) for f, r, w in samples if w is not None and w > 0]
    if weighted:
        total = sum(w for _, w in weighted)
        return sum(d * w for d, w in weighted) / total
    return sum(f - r for f, r, _ in samples) / len(samples)


@dataclass(frozen=True)
class LowDeltaT:
    start: float
    raised_at: float
    end: float | None
    values: tuple[float, ...]


def low_delta_t_alarms(
    intervals: Sequence[tuple[float, float, float]], threshold_k: float, count: int
) -> list[LowDeltaT]:
    """Alarms over ``(start, end, ΔT)`` intervals in time order: consecutive runs below the threshold of at
    least ``count`` intervals. ``end`` is when the run stopped (None if still running)."""
    alarms: list[LowDeltaT] = []
    run: list[tuple[float, float, float]] = []
    previous_end: float | None = None
    for start, end, value in sorted(intervals):
        contiguous = previous_end is None or abs(start - previous_end) < 1e-6
        if value < threshold_k and (contiguous or not run):
            run.append((start, end, value))
        else:
            if len(run) >= count:
                alarms.append(LowDeltaT(run[0][0], run[count - 1][1], run[-1][1], tuple(v for *_, v in run)))
            run = [(start, end, value)] if value < threshold_k else []
        previous_end = end
    if len(run) >= count:
        alarms.append(LowDeltaT(run[0][0], run[count - 1][1], None, tuple(v for *_, v in run)))
    return alarms


@dataclass(frozen=True)
class PeakCheck:
    peak_kw: float
    contracted_kw: float | None
    exceeded: bool
    ratio: float | None


def peak_against_contract(powers_kw: Sequence[float], contracted_kw: float | None) -> PeakCheck | None:
    """The day's peak thermal power and whether it exceeds the contracted value."""
    if not powers_kw:
        return None
    peak = max(powers_kw)
    if contracted_kw is None or contracted_kw <= 0:
        return PeakCheck(peak, contracted_kw, False, None)
    return PeakCheck(peak, contracted_kw, peak > contracted_kw, peak / contracted_kw)
