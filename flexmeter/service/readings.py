"""From notified NGSI-v2 entities to canonical readings: one quantity name and one unit per quantity.

The agents and the data-model builders name some quantities differently (``thermalPower`` vs
``instantPower``, ``volumeFlow`` vs ``flowRate``) and send them in the unit the meter uses (heat energy in
MWh or GJ, power in W or kW, water in litres or m³). Here every attribute the analytics use is mapped to
a canonical quantity and converted by its ``unitCode`` metadata, so that no analytic ever mixes units.
A reading's key is (entity, observation time, quantity): the basis of idempotence.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flexmeter.ngsi_models import parse_datetime
from flexmeter.service.errors import InvalidNotification

Json = dict[str, Any]

#: canonical quantity → (attribute names in order of preference, canonical unit, {unitCode: factor})
ENERGY_KWH = {"KWH": 1.0, "WHR": 0.001, "MWH": 1000.0, "GV": 1e6 / 3600.0, "GWH": 1e6}
POWER_W = {"WTT": 1.0, "KWT": 1000.0, "MAW": 1e6}
POWER_KW = {"KWT": 1.0, "WTT": 0.001, "MAW": 1000.0}
REACTIVE_VAR = {"D44": 1.0, "KVR": 1000.0}
VOLUME_L = {"LTR": 1.0, "MTQ": 1000.0}
FLOW_M3H = {"MQH": 1.0, "E32": 0.001}
TEMPERATURE = {"CEL": 1.0}
KELVIN = {"KEL": 1.0, "CEL": 1.0}

QUANTITIES: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "e_imp": (("totalActiveEnergyImport",), ENERGY_KWH),
    "e_exp": (("totalActiveEnergyExport",), ENERGY_KWH),
    "q": (("totalReactivePower",), REACTIVE_VAR),
    "h_e": (("totalConsumption",), ENERGY_KWH),
    "t_f": (("forwardTemperature",), TEMPERATURE),
    "t_r": (("returnTemperature",), TEMPERATURE),
    "dt": (("temperatureDifference",), KELVIN),
    "h_p": (("thermalPower", "instantPower"), POWER_KW),
    "h_pk": (("peakPower",), POWER_KW),
    "h_flow": (("volumeFlow", "flowRate"), FLOW_M3H),
    "w_vol": (("waterConsumption",), VOLUME_L),
    "w_flow": (("flow",), FLOW_M3H),
    "w_rev": (("backflowVolume",), VOLUME_L),
}
#: attribute name → (quantity, preference rank, unit factors): one dict lookup per notified attribute
ATTRIBUTE_QUANTITY: dict[str, tuple[str, int, dict[str, float]]] = {
    name: (quantity, rank, units)
    for quantity, (names, units) in QUANTITIES.items()
    for rank, name in enumerate(names)
}
#: the register quantity of each commodity (its profile), and the export register of electricity
REGISTERS = {"electricity": "e_imp", "heat": "h_e", "water": "w_vol"}
TOPOLOGY_RELATIONS = ("refSubstation", "refFeeder", "refBuilding", "refDevice", "refTargetDevice")
TOPOLOGY_TYPES = ("Device", "Building", "Substation", "Feeder")
TOPOLOGY_PROPERTIES = ("customersCount", "contractedHeatPower", "contractedPower", "name")
PHASES = ("L1", "L2", "L3")
#: a phase voltage below this (V) means the phase is out
OUTAGE_VOLTAGE = 50.0


@dataclass
class Observation:
    """What one notified entity says, in canonical form."""

    entity_id: str
    entity_type: str
    t: float
    vector: str | None
    values: dict[str, float] = field(default_factory=dict)
    #: (phase, out): phase "" is the whole supply
    supply: list[tuple[str, bool]] = field(default_factory=list)
    links: dict[str, list[str]] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    breaker: dict[str, str] = field(default_factory=dict)


def _value(attr: Any) -> Any:
    return attr.get("value") if isinstance(attr, dict) else attr


def _unit(attr: Any) -> str | None:
    if isinstance(attr, dict):
        metadata = attr.get("metadata")
        if isinstance(metadata, dict):
            unit = metadata.get("unitCode")
            value = _value(unit)
            return value if isinstance(value, str) else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time(entity: Mapping[str, Any]) -> float | None:
    for name in ("TimeInstant", "dateObserved", "dateIssued", "dateDetected"):
        value = _value(entity.get(name))
        if isinstance(value, str):
            try:
                return parse_datetime(value).timestamp()
            except ValueError:
                continue
    for name, attr in entity.items():
        if name in ("id", "type") or not isinstance(attr, dict):
            continue
        metadata = attr.get("metadata")
        if isinstance(metadata, dict):
            for key in ("TimeInstant", "timestamp"):
                stamp = _value(metadata.get(key))
                if isinstance(stamp, str):
                    try:
                        return parse_datetime(stamp).timestamp()
                    except ValueError:
                        continue
    return None


def _refs(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def vector_of(entity_type: str, values: Mapping[str, float]) -> str | None:
    if entity_type == "WaterConsumptionObserved" or "w_vol" in values:
        return "water"
    if entity_type == "SmartMeteringObservation" or "h_e" in values or "t_f" in values:
        return "heat"
    if "e_imp" in values or entity_type in ("ACMeasurement", "ThreePhaseAcMeasurement"):
        return "electricity"
    return None


#: the other attributes the service reads, by role
ROLES: dict[str, str] = {
    **{name: "link" for name in TOPOLOGY_RELATIONS},
    **{name: "prop" for name in TOPOLOGY_PROPERTIES},
    "totalActivePower": "power", "totalActivePowerImport": "power", "totalActivePowerExport": "power",
    "breaker_status": "breaker", "breaker_info": "breaker",
    "status": "status", "powerOutage": "flags", "phaseVoltage": "voltage",
    "dateEnergyMeteringStarted": "origin",
    "subCategory": "alert", "data": "alert", "alertSource": "alert",
}


def _active_power(powers: Mapping[str, Any], entity_type: str) -> float | None:
    """Signed active power in W (import positive), whatever way the meter splits it."""

    def watts(name: str) -> float | None:
        attr = powers.get(name)
        number = _number(_value(attr)) if attr is not None else None
        if number is None:
            return None
        return number * POWER_W.get(_unit(attr) or "WTT", 1.0)

    forward, reverse = watts("totalActivePowerImport"), watts("totalActivePowerExport")
    total = watts("totalActivePower")
    if forward is not None:
        return forward - (reverse or 0.0)
    if total is not None and reverse is not None and entity_type == "ACMeasurement":
        return total - reverse  # the E350 mapping: totalActivePower is OBIS 1.7.0 (import only)
    return total


def observe(entity: Mapping[str, Any], now: float | None = None) -> Observation:
    """The canonical observation of one normalized entity (one pass over its attributes); raises
    InvalidNotification on a bad shape."""
    entity_id = entity.get("id")
    entity_type = entity.get("type") or ""
    if not isinstance(entity_id, str) or not entity_id or not isinstance(entity_type, str):
        raise InvalidNotification("every entity in data needs a string id (and type)")
    values: dict[str, float] = {}
    ranks: dict[str, int] = {}
    by_role: dict[str, Any] = {}
    powers: dict[str, Any] = {}
    links: dict[str, list[str]] = {}
    properties: dict[str, Any] = {}
    breaker: dict[str, str] = {}
    for name, attr in entity.items():
        mapped = ATTRIBUTE_QUANTITY.get(name)
        if mapped is not None:
            quantity, rank, units = mapped
            if ranks.get(quantity, 99) < rank:
                continue
            number = _number(_value(attr))
            if number is not None:
                unit = _unit(attr)
                values[quantity] = number * units.get(unit, 1.0) if unit else number
                ranks[quantity] = rank
            continue
        role = ROLES.get(name)
        if role is None:
            continue
        if role == "power":
            powers[name] = attr
        elif role == "link":
            refs = _refs(_value(attr))
            if refs:
                links[name] = refs
        elif role == "prop":
            value = _value(attr)
            if value is not None:
                properties[name] = value
        elif role == "breaker":
            value = _value(attr)
            if isinstance(value, str):
                breaker[name] = value
        else:
            by_role[name] = attr
    if powers and (entity_type in ("ACMeasurement", "ThreePhaseAcMeasurement") or "e_imp" in values):
        power = _active_power(powers, entity_type)
        if power is not None:
            values["p"] = power
    t = _time(entity)
    observation = Observation(entity_id, entity_type, t if t is not None else (now or time.time()),
                              vector_of(entity_type, values), values, links=links, properties=properties,
                              breaker=breaker)
    if by_role:
        _supply(by_role, entity_type, observation)
        started = _value(by_role.get("dateEnergyMeteringStarted"))
        if isinstance(started, str):
            with contextlib.suppress(ValueError):
                observation.values["_origin"] = parse_datetime(started).timestamp()
    if entity_type != "Alert" and not observation.supply and observation.values:
        observation.supply.append(("", False))
    return observation


def _supply(attrs: Mapping[str, Any], entity_type: str, observation: Observation) -> None:
    """Supply status: last gasp / outage status, per-phase flags, phase voltages."""
    if entity_type == "Alert":
        data = _value(attrs.get("data"))
        kind = _value(attrs.get("subCategory")) or (data.get("event") if isinstance(data, dict) else None)
        source = _value(attrs.get("alertSource"))
        if kind == "powerOutage" and isinstance(source, str) and not isinstance(data, dict):
            # an agent's last-gasp Alert (the service's own area Alerts carry a data object)
            observation.links["alertSource"] = [source]
            observation.supply.append(("", True))
        return
    status = _value(attrs.get("status"))
    if status == "powerOutage":
        observation.supply.append(("", True))
    elif status == "ok":
        observation.supply.append(("", False))
    flags = _value(attrs.get("powerOutage"))
    if isinstance(flags, dict):
        for phase in PHASES:
            if isinstance(flags.get(phase), bool):
                observation.supply.append((phase, bool(flags[phase])))
    voltages = _value(attrs.get("phaseVoltage"))
    if isinstance(voltages, dict) and not isinstance(flags, dict):
        factor = 1000.0 if _unit(attrs.get("phaseVoltage")) == "KVT" else 1.0
        for phase in PHASES:
            volts = _number(voltages.get(phase))
            if volts is not None:
                observation.supply.append((phase, volts * factor < OUTAGE_VOLTAGE))
        single = _number(voltages.get("L"))  # a single-phase meter (DLMS ST-I): its one phase is its supply
        if single is not None:
            observation.supply.append(("", single * factor < OUTAGE_VOLTAGE))


def notification_entities(body: Any) -> list[Json]:
    """The ``data`` entities of a normalized NGSI-v2 notification (shape checked, not deep-validated:
    the broker already validated them, and this is the hot path)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise InvalidNotification("a notification is an object with subscriptionId and a data array")
    for entity in body["data"]:
        if not isinstance(entity, dict):
            raise InvalidNotification("data items must be entities (objects)")
    entities: list[Json] = body["data"]
    return entities
