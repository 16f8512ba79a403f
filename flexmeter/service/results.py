"""The service's result entities, built with :mod:`flexmeter.ngsi_models` (one definition per type).

Ids are deterministic, so recomputing a result (late or duplicated data) updates the same entity:
- ``ConsumptionProfile:<meter>:<resolution>`` (TimeInstant = period end: QuantumLeap keeps one row per period)
- ``EnergyBalance:<area>`` (same, every 15 minutes)
- ``Alert:Outage:<area>:<start epoch>``, ``Anomaly:<kind>:<meter>:<start epoch or day>``
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from flexmeter.ngsi_models import (
    ThresholdBreach,
    alert,
    anomaly,
    consumption_profile,
    energy_balance,
)
from flexmeter.service.analytics.balance import Balance
from flexmeter.service.analytics.outages import AreaOutage
from flexmeter.service.periods import utc

Json = dict[str, Any]
URN = "urn:ngsi-ld:"
DETECTOR = "urn:flexmeter:service"


def local_id(entity_id: str) -> str:
    """The id without the ``urn:ngsi-ld:`` prefix, with characters the id patterns refuse replaced."""
    text = entity_id[len(URN):] if entity_id.startswith(URN) else entity_id
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in text)


def exact(value: float, places: int = 4) -> Decimal:
    """A float result as a Decimal with fixed places (JSON numbers without float noise)."""
    quantum = Decimal(1).scaleb(-places)
    result = Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_EVEN)
    return result.normalize() if result != 0 else Decimal(0)


BUILDING_KEY = "|"


def building_key(building: str, vector: str) -> str:
    """The profile key of a building's aggregate of one commodity (its meters' sum)."""
    return f"{building}{BUILDING_KEY}{vector}"


def profile_entity(meter: str, vector: str, resolution: str, start: float, end: float, consumption: float,
                   production: float | None, estimated: bool, completeness: float) -> Json:
    """A meter's profile, or a building's (``meter`` = :func:`building_key`) with ``refBuilding``."""
    unit_scale = 0.001 if vector in ("water", "gas") else 1.0  # litres → m³
    building, _, _ = meter.partition(BUILDING_KEY) if BUILDING_KEY in meter else (None, "", "")
    local = f"{local_id(building)}:{vector}" if building else local_id(meter)
    return consumption_profile(
        f"{local}:{resolution}",
        vector=vector,  # type: ignore[arg-type]
        resolution=resolution,  # type: ignore[arg-type]
        period_start=utc(start),
        period_end=utc(end),
        ref_device=None if building else meter,
        ref_building=building,
        consumption=exact(max(consumption, 0.0) * unit_scale, 6 if unit_scale != 1.0 else 4),
        production=exact(max(production, 0.0)) if production is not None and vector == "electricity" else None,
        estimated=estimated,
        completeness=exact(min(max(completeness, 0.0), 1.0), 3),
    )


def balance_entity(area: str, substation: str, feeder: str | None, start: float, end: float,
                   balance: Balance) -> Json:
    return energy_balance(
        local_id(area),
        ref_substation=substation,
        ref_feeder=feeder,
        period_start=utc(start),
        period_end=utc(end),
        energy_delivered=exact(balance.delivered),
        energy_consumed=exact(max(balance.consumed, 0.0)),
        energy_produced=exact(max(balance.produced, 0.0)),
        losses=exact(balance.losses),
        losses_percent=exact(balance.losses_percent, 3) if balance.losses_percent is not None else None,
        completeness=exact(balance.completeness, 3),
        meters_expected=balance.meters_expected,
        meters_reported=balance.meters_reported,
        estimated=balance.estimated,
    )


def outage_entity(area: str, event: AreaOutage, issued: float) -> Json:
    data: Json = {
        "event": "powerOutage",
        "customersAffected": event.customers,
        "metersAffected": len(event.meters),
        "phases": list(event.phases),
        "restored": event.end is not None,
    }
    if event.duration is not None:
        data["durationSeconds"] = round(event.duration)
    return alert(
        f"Outage:{local_id(area)}:{int(event.start)}",
        category="security",
        alert_source=area,
        issued_at=utc(issued),
        severity="high" if event.end is None else "medium",
        name="Power outage" if event.end is None else "Power outage restored",
        description=f"{event.customers} customers without supply",
        valid_from=utc(event.start),
        valid_to=utc(event.end) if event.end is not None else None,
        data=data,
    )


def anomaly_entity(name: str, anomaly_type: str, meter: str, key: str, detected: float, prop: str,
                   description: str, breaches: list[tuple[float, float, str, float]] | None = None) -> Json:
    return anomaly(
        f"{name}:{local_id(meter)}:{key}",
        anomalous_property=prop,
        detected_at=utc(detected),
        detected_by=DETECTOR,
        ref_device=meter,
        anomaly_type=anomaly_type,
        name=name,
        description=description,
        threshold_breach=[
            ThresholdBreach(utc(t), exact(value, 3), "UPPER" if side == "UPPER" else "LOWER", exact(limit, 3))
            for t, value, side, limit in (breaches or [])
        ] or None,
    )
