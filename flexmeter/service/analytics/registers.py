"""Consumption over a period from a cumulative register: interpolation, roll-over, reset and replacement.

A register reading is ``(t, v)`` (epoch seconds, register value). The consumption over ``[t0, t1)`` is the
register's increase between the two boundaries, each boundary value linearly interpolated between the
readings around it. Because the register is cumulative, a gap *inside* the period loses nothing; only a
boundary far from any reading (more than ``tolerance`` seconds) makes the value an estimate.

A decrease between two readings is either a **roll-over** (the register wrapped at its capacity, a power
of ten: ``99 998.7 → 0.4``) and counted exactly, or a **reset / meter replacement** (the new register
started again somewhere else). The increase across a reset is unknown: it is estimated from the mean rate
of the other readings, and the period is flagged ``estimated``. An explicit replacement time (e.g. a new
``dateEnergyMeteringStarted``) is treated like a reset even when the register did not decrease, and is
never a roll-over.

Without such a signal the two are told apart by the values only, and the readings cannot always do it: a
new meter starting at 0.3 after the old one read 99 950 looks like a wrap. The two mistakes are not equally
bad: a roll-over taken for a reset costs one interval estimated from the rate (and flagged); a replacement
taken for a roll-over counts the distance to the power of ten (here 50, up to 10 % of the capacity) as
real, unflagged consumption. So a decrease is a roll-over only when the increase it implies
(``capacity - before + after``) is one the meter could have made in that time: at most
``ROLLOVER_SLACK`` times its peak rate between readings (``peak_rate``) over the interval. A wrap the rate
cannot vouch for (no other readings to take a rate from, or too big a jump) is read as a reset. A
replacement that passes the test anyway (the old register within a few intervals' consumption of the power
of ten) is then off by at most that plausible amount.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]


@dataclass(frozen=True)
class Delta:
    """The register increase over a period and how trustworthy it is."""

    value: float
    estimated: bool
    #: readings strictly inside the period plus those on its boundaries
    readings: int
    #: "rollover" / "reset" when one happened inside the period
    events: tuple[str, ...] = ()


#: a wrap-around is a roll-over only if its implied increase is at most this many times the meter's peak
#: rate over the interval (real consumption between two readings rarely exceeds its own peak rate)
ROLLOVER_SLACK = 3.0


def rollover_capacity(before: float, after: float, max_increase: float = math.inf) -> float | None:
    """The register capacity if ``before → after`` is a wrap-around (e.g. 99 998.7 → 0.4) whose implied
    increase ``capacity - before + after`` is at most ``max_increase``, else None."""
    if before <= 0 or after < 0 or after >= before:
        return None
    capacity = 10.0 ** (math.floor(math.log10(before)) + 1)
    if before >= 0.9 * capacity and after <= 0.1 * capacity and capacity - before + after <= max_increase:
        return capacity
    return None


def peak_rate(points: Sequence[Point]) -> float | None:
    """The highest increase per second between consecutive readings that did not decrease (None: no such
    pair): what the meter is known to be able to consume, the yardstick of a plausible roll-over."""
    rates = [(vb - va) / (tb - ta) for (ta, va), (tb, vb) in itertools.pairwise(points) if tb > ta and vb >= va]
    return max(rates) if rates else None


def _increments(points: Sequence[Point], resets: Sequence[float],
                max_rate: float | None) -> list[tuple[float, str]]:
    """Per consecutive pair: (increase, kind) with kind "", "rollover" or "reset" (increase unknown: nan)."""
    result: list[tuple[float, str]] = []
    for (ta, va), (tb, vb) in itertools.pairwise(points):
        replaced = any(ta < r <= tb for r in resets)
        if not replaced and vb >= va:
            result.append((vb - va, ""))
            continue
        capacity = None
        if not replaced and max_rate is not None:  # a replacement signal is never a roll-over
            capacity = rollover_capacity(va, vb, ROLLOVER_SLACK * max_rate * (tb - ta))
        if capacity is not None:
            result.append((capacity - va + vb, "rollover"))
        else:
            result.append((math.nan, "reset"))
    return result


def _mean_rate(points: Sequence[Point], increments: list[tuple[float, str]]) -> float:
    total, duration = 0.0, 0.0
    for ((ta, _), (tb, _)), (inc, kind) in zip(itertools.pairwise(points), increments, strict=True):
        if kind != "reset" and tb > ta:
            total += inc
            duration += tb - ta
    return total / duration if duration > 0 else 0.0


def register_delta(
    points: Sequence[Point], t0: float, t1: float, *, tolerance: float = 300.0, resets: Sequence[float] = (),
    max_rate: float | None = None,
) -> Delta | None:
    """The register increase over ``[t0, t1)``; None when the readings do not reach both boundaries.

    ``points`` must be sorted by time and include the last reading at or before ``t0`` and the first at or
    after ``t1`` (more readings outside are harmless). ``resets``: times of explicit replacements (a reset
    between the readings around it, never a roll-over). ``max_rate``: the meter's peak rate (register units
    per second, :func:`peak_rate` of a wider window); without it, the peak rate of ``points`` themselves.
    """
    if t1 <= t0 or len(points) == 0 or points[0][0] > t0 or points[-1][0] < t1:
        return None
    increments = _increments(points, resets, max_rate if max_rate is not None else peak_rate(points))
    rate = _mean_rate(points, increments)
    cumulative = [0.0]
    events: list[str] = []
    estimated = False
    for ((ta, _), (tb, _)), (inc, kind) in zip(itertools.pairwise(points), increments, strict=True):
        overlaps = ta < t1 and tb > t0
        if kind == "reset":
            inc = rate * (tb - ta)
            if overlaps:
                estimated = True
        if kind and overlaps:
            events.append(kind)
        cumulative.append(cumulative[-1] + inc)

    def at(t: float) -> tuple[float, bool]:
        """Interpolated cumulative value at ``t`` and whether it is an estimate."""
        for i in range(len(points) - 1):
            ta, tb = points[i][0], points[i + 1][0]
            if ta <= t <= tb:
                if t == ta:
                    return cumulative[i], False
                if t == tb:
                    return cumulative[i + 1], False
                share = (t - ta) / (tb - ta)
                value = cumulative[i] + share * (cumulative[i + 1] - cumulative[i])
                return value, min(t - ta, tb - t) > tolerance
        return cumulative[-1], False  # single point exactly on both boundaries (t0 == t1 excluded above)

    start, start_est = at(t0)
    end, end_est = at(t1)
    inside = sum(1 for t, _ in points if t0 <= t <= t1)
    return Delta(
        value=max(end - start, 0.0),
        estimated=estimated or start_est or end_est,
        readings=inside,
        events=tuple(dict.fromkeys(events)),
    )


def typical_interval(points: Sequence[Point], default: float = 10.0) -> float:
    """The median time between consecutive readings: what a meter's reporting period is."""
    gaps = sorted(tb - ta for (ta, _), (tb, _) in itertools.pairwise(points) if tb > ta)
    if not gaps:
        return default
    return gaps[len(gaps) // 2]


def completeness(points: Sequence[Point], t0: float, t1: float, interval: float) -> float:
    """Readings received in ``[t0, t1)`` over those expected at ``interval`` seconds, capped at 1."""
    expected = max((t1 - t0) / interval, 1.0)
    received = sum(1 for t, _ in points if t0 <= t < t1)
    return min(received / expected, 1.0)
