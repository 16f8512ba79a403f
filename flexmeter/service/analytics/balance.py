"""Energy balance of a substation (or one of its feeders) over one period: where the losses are.

    losses = delivered + produced - consumed
    losses % = losses / (delivered + produced) x 100

``delivered`` is the net energy the substation/feeder meter let into the LV network (import register
increase minus export register increase: when the customers' PV exports more than they consume, energy
flows back to MV and counts negative). ``consumed`` and ``produced`` are the sums of the customers'
import and export (PV) register increases, so a PV customer's own production is neither a loss nor a
consumption. A customer meter without data for the period is estimated from its recent mean (flagged);
``completeness`` is the share of customer meters that reported measured data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class MeterEnergy:
    """One meter's energy over the period (kWh), from its profile."""

    consumed: float
    produced: float = 0.0
    estimated: bool = False


@dataclass(frozen=True)
class Balance:
    delivered: float
    consumed: float
    produced: float
    losses: float
    losses_percent: float | None
    completeness: float
    meters_expected: int
    meters_reported: int
    estimated: bool


def energy_balance(
    supply: MeterEnergy,
    customers: Mapping[str, MeterEnergy | None],
    fallback: Mapping[str, MeterEnergy] | None = None,
) -> Balance:
    """The balance from the supply meter and each expected customer meter (None: no data).

    ``fallback`` gives an estimate for customers without data (e.g. their recent mean); customers with
    neither count as zero and lower ``completeness``.
    """
    fallback = fallback or {}
    delivered = supply.consumed - supply.produced
    consumed = produced = 0.0
    reported = 0
    estimated = supply.estimated
    for meter, energy in customers.items():
        if energy is None:
            energy = fallback.get(meter)
            if energy is None:
                estimated = True
                continue
            energy = MeterEnergy(energy.consumed, energy.produced, True)
        if not energy.estimated:
            reported += 1
        estimated = estimated or energy.estimated
        consumed += energy.consumed
        produced += energy.produced
    losses = delivered + produced - consumed
    fed = delivered + produced
    expected = len(customers)
    return Balance(
        delivered=delivered,
        consumed=consumed,
        produced=produced,
        losses=losses,
        losses_percent=losses / fed * 100.0 if fed > 0 else None,
        completeness=reported / expected if expected else 1.0,
        meters_expected=expected,
        meters_reported=reported,
        estimated=estimated,
    )
