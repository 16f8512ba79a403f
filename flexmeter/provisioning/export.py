"""What the endpoints hold -> an inventory document (the same format ``apply`` reads).

Meters are rebuilt from the IoT Agent device (group, protocol, model, address, key *references*,
timezone, commands) and its ``Device`` entity (type, names, place, refs); keys themselves are never
read back. Subscriptions are written inline, with the URLs the broker holds.
"""

from __future__ import annotations

from typing import Any

import yaml

from flexmeter.ngsi_models.table import URN_PREFIX
from flexmeter.provisioning.desired import Desired, default_entity_type
from flexmeter.provisioning.remote import Remote
from flexmeter.provisioning.subscriptions import normalized

Json = dict[str, Any]
DEFAULT_CONTROLLED = {
    "electricity": ["electricityConsumption", "energy", "power"],
    "heat": ["energy", "power", "temperature", "waterFlow"],
    "water": ["waterConsumption", "waterFlow"],
    "gas": ["gasConsumption"],
}


def _local(entity_type: str, urn: Any) -> Any:
    prefix = f"{URN_PREFIX}{entity_type}:"
    return urn[len(prefix):] if isinstance(urn, str) and urn.startswith(prefix) else urn


def _value(entity: Json, name: str) -> Any:
    attr = entity.get(name)
    return attr.get("value") if isinstance(attr, dict) else None


def _location(entity: Json) -> Json | None:
    geo = _value(entity, "location")
    if isinstance(geo, dict) and geo.get("type") == "Point":
        longitude, latitude = geo["coordinates"][:2]
        return {"latitude": latitude, "longitude": longitude}
    return None


def _clean(item: Json) -> Json:
    return {k: v for k, v in item.items() if v is not None and v != [] and v != {}}


def _place(entity: Json, fields: dict[str, tuple[str, str | None]]) -> Json:
    item: Json = {"id": _local(entity["type"], entity["id"])}
    for name in ("name", "description", "address"):
        item[name] = _value(entity, name)
    item["location"] = _location(entity)
    for field, (attribute, ref_type) in fields.items():
        value = _value(entity, attribute)
        if ref_type is not None and isinstance(value, list):
            value = [_local(ref_type, v) for v in value]
        elif ref_type is not None:
            value = _local(ref_type, value)
        item[field] = value
    return item


def _meter(dev: Json, entity: Json | None) -> Json:
    raw_internal = dev.get("internal_attributes")
    internal: Json = raw_internal if isinstance(raw_internal, dict) else {}
    entity = entity or {}
    meter_type = _value(entity, "meterType") or internal.get("meterType")
    entity_type = str(dev.get("entity_type") or "")
    phases = 3 if entity_type == "ThreePhaseAcMeasurement" else None
    meter_id = str(dev["device_id"])
    name = dev.get("entity_name")
    if isinstance(name, str) and name.startswith(f"{URN_PREFIX}{entity_type}:"):
        meter_id = name[len(f"{URN_PREFIX}{entity_type}:"):]
    item: Json = {"id": meter_id, "device_id": dev["device_id"] if meter_id != dev["device_id"] else None,
                  "group": dev.get("apikey"), "type": meter_type,
                  "protocol": dev.get("protocol"), "model": internal.get("model"), "phases": phases}
    if meter_type and entity_type != default_entity_type(str(meter_type), phases):
        item["entity_type"] = entity_type
    item.update({
        "name": _value(entity, "name"),
        "description": _value(entity, "description"),
        "serial": _value(entity, "serialNumber"),
        "manufacturer": _value(entity, "manufacturerName"),
        "firmware": _value(entity, "firmwareVersion"),
        "address": internal.get("address"),
        "keys": internal.get("key_refs"),
        "timezone": dev.get("timezone"),
        "location": _location(entity),
        "building": _local("Building", _value(entity, "refBuilding")),
        "feeder": _local("Feeder", _value(entity, "refFeeder")),
        "substation": _local("Substation", _value(entity, "refSubstation")),
        "installed": _value(entity, "dateInstalled"),
        "commands": [c["name"] for c in dev.get("commands") or [] if isinstance(c, dict) and "name" in c],
        "attributes": dev.get("attributes") or None,
    })
    controlled = _value(entity, "controlledProperty")
    if controlled and controlled != DEFAULT_CONTROLLED.get(str(meter_type)):
        item["controlled_property"] = controlled
    return _clean(item)


def _group(group: Json) -> Json:
    internal = group.get("internal_attributes")
    return _clean({
        "apikey": group.get("apikey"), "service_path": group.get("subservice"), "protocol": group.get("protocol"),
        "transport": group.get("transport"), "resource": group.get("resource") or None,
        "entity_type": group.get("entity_type"), "autoprovision": group.get("autoprovision"),
        "timezone": group.get("timezone"), "explicit_attrs": group.get("explicitAttrs"),
        "attributes": group.get("attributes"), "commands": group.get("commands"),
        "static_attributes": group.get("static_attributes"),
        "config": internal if isinstance(internal, dict) else None, "description": group.get("description"),
    })


def export_inventory(desired: Desired, remote: Remote) -> Json:
    """An inventory document for every tenant and service path the desired state covers."""
    tenants: dict[str, Json] = {}
    for service, path in desired.scopes:
        tenant = tenants.setdefault(service, {"service": service, "service_paths": [], "groups": [],
                                              "substations": [], "feeders": [], "buildings": [], "meters": [],
                                              "subscriptions": []})
        if path not in tenant["service_paths"]:
            tenant["service_paths"].append(path)
    by_scope: dict[tuple[str, str, str], dict[str, Json]] = {}
    for (kind, service, path, key), body in remote.items.items():
        by_scope.setdefault((kind, service, path), {})[key] = body
    protocols = {str(g.get("apikey")): g.get("protocol") for (kind, *_), g in remote.items.items() if kind == "group"}
    for service, path in desired.scopes:
        tenant = tenants[service]
        for group in by_scope.get(("group", service, path), {}).values():
            tenant["groups"].append(_group({**group, "subservice": path}))
        entities = by_scope.get(("entity", service, path), {})
        for key, entity in entities.items():
            entity_type = key.split("|", 1)[0]
            if entity_type == "Substation":
                item = _place(entity, {"primary_voltage": ("primaryVoltage", None),
                                       "secondary_voltage": ("secondaryVoltage", None),
                                       "rated_power": ("ratedPower", None),
                                       "transformer_count": ("transformerCount", None),
                                       "devices": ("refDevice", "Device")})
                tenant["substations"].append(_clean({**item, "service_path": path}))
            elif entity_type == "Feeder":
                item = _place(entity, {"substation": ("refSubstation", "Substation"),
                                       "rated_current": ("ratedCurrent", None),
                                       "devices": ("refDevice", "Device")})
                tenant["feeders"].append(_clean({**item, "service_path": path}))
            elif entity_type == "Building":
                item = _place(entity, {"category": ("category", None), "feeder": ("refFeeder", "Feeder"),
                                       "substation": ("refSubstation", "Substation"),
                                       "contracted_heat_power": ("contractedHeatPower", None),
                                       "customers_count": ("customersCount", None)})
                tenant["buildings"].append(_clean({**item, "service_path": path}))
        for dev in by_scope.get(("device", service, path), {}).values():
            meter = _meter(dev, None)
            meter = _meter(dev, entities.get(f"Device|{URN_PREFIX}Device:{meter['id']}"))
            if meter.get("protocol") == protocols.get(str(meter.get("group"))):
                del meter["protocol"]  # the group's
            tenant["meters"].append(meter)
    wanted = {r.ident for r in desired.of("subscription")}
    for ident, body in remote.items.items():
        if ident in wanted:
            tenants[ident[1]]["subscriptions"].append({"service_path": ident[2], "subscription": normalized(body)})
    return {"version": 1, "tenants": [_clean(t) for t in tenants.values()]}


def dump_yaml(document: Json) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
