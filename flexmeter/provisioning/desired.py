"""Inventory -> the resources the endpoints should hold: service groups and devices (IoT Agent north API),
entities (NGSI-v2, built by ``flexmeter.ngsi_models``) and subscriptions, each with its origin line."""

from __future__ import annotations

import glob
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flexmeter.ngsi_models import (
    TABLES,
    NgsiModelError,
    building,
    device,
    entity_id,
    feeder,
    substation,
)
from flexmeter.ngsi_models.table import convert
from flexmeter.provisioning import secrets
from flexmeter.provisioning.errors import InventoryError, Problem, SecretError
from flexmeter.provisioning.inventory import LoadedInventory
from flexmeter.provisioning.schema import Building, Feeder, Group, Meter, SubscriptionEntry, Substation, Tenant
from flexmeter.provisioning.subscriptions import normalized, orion_config_dir, render_template

Json = dict[str, Any]

KINDS = ("group", "device", "entity", "subscription")
#: entity types provisioning owns (static topology and one Device per meter)
STATIC_TYPES = ("Substation", "Feeder", "Building", "Device")
TRANSPORT_PROTOCOL = {"MQTT": "mqtt", "HTTP": "http"}
TABLE_BY_TYPE = {table.entity_type: table for table in TABLES}


@dataclass
class Resource:
    """One thing at one endpoint: ``body`` is what is sent, ``compare`` what must match (no secrets)."""

    kind: str
    service: str
    service_path: str
    key: str
    label: str
    body: Json
    compare: Json
    origin: str = ""
    entity_type: str = ""

    @property
    def ident(self) -> tuple[str, str, str, str]:
        return (self.kind, self.service, self.service_path, self.key)


@dataclass
class Desired:
    resources: list[Resource] = field(default_factory=list)
    #: (service, service path) pairs the inventory covers, for listing and export
    scopes: list[tuple[str, str]] = field(default_factory=list)

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]


def default_entity_type(meter_type: str, phases: int | None) -> str:
    if meter_type == "electricity":
        return "ThreePhaseAcMeasurement" if phases == 3 else "ACMeasurement"
    if meter_type == "water":
        return "WaterConsumptionObserved"
    return "SmartMeteringObservation"


def _problem(item: Any, where: str, reason: str) -> Problem:
    file, _, line = str(item._origin).rpartition(":")
    if not file:
        return Problem(line, None, where, reason)
    return Problem(file, int(line) if line.isdigit() else None, where, reason)


def _ref(entity_type: str, local: str | None) -> str | None:
    return entity_id(entity_type, local) if local is not None else None


def _ref_device_attribute(entity_type: str, device_urn: str) -> Json | None:
    """``refDevice`` on the measurement entity, typed as that entity's table says (list or single)."""
    table = TABLE_BY_TYPE.get(entity_type)
    if table is None or "ref_device" not in table.index:
        return None
    row = table.row("ref_device")
    value = convert(row, [device_urn] if row.ngsi_type == "StructuredValue" else device_urn)
    return {"name": row.attribute, "type": row.ngsi_type, "value": value}


class Compiler:
    def __init__(self, loaded: LoadedInventory, urls: Mapping[str, str], environ: Mapping[str, str] | None,
                 orion_config: Path | None = None) -> None:
        self.loaded = loaded
        self.urls = dict(urls)
        self.environ = environ
        self.orion_config = orion_config if orion_config is not None else orion_config_dir()
        self.problems: list[Problem] = []
        self.desired = Desired()

    def compile(self) -> Desired:
        for tenant in self.loaded.inventory.tenants:
            self._tenant(tenant)
        if self.problems:
            raise InventoryError(self.problems)
        return self.desired

    def _path(self, tenant: Tenant, path: str | None) -> str:
        chosen = path or tenant.default_service_path or (tenant.service_paths or ["/"])[0]
        scope = (str(tenant.service), chosen)
        if scope not in self.desired.scopes:
            self.desired.scopes.append(scope)
        return chosen

    def _add(self, resource: Resource) -> None:
        self.desired.resources.append(resource)

    def _tenant(self, tenant: Tenant) -> None:
        service = str(tenant.service)
        for path in tenant.service_paths:
            self._path(tenant, path)
        groups = {g.apikey: g for g in tenant.groups}
        for group in tenant.groups:
            self._group(service, self._path(tenant, group.service_path), group)
        places: list[tuple[str, Substation | Feeder | Building]] = [
            *(("Substation", s) for s in tenant.substations),
            *(("Feeder", f) for f in tenant.feeders),
            *(("Building", b) for b in tenant.buildings),
        ]
        for entity_type, place in places:
            try:
                body = self._place(entity_type, place)
            except (NgsiModelError, ValueError) as exc:
                self.problems.append(_problem(place, f"{entity_type.lower()} {place.id}", str(exc)))
                continue
            self._entity(service, self._path(tenant, place.service_path), body, place._origin)
        for meter in tenant.meters:
            group = groups[meter.group]
            path = self._path(tenant, group.service_path)
            try:
                iota, entity = self._meter(tenant, group, meter)
            except SecretError as exc:
                self.problems.append(_problem(meter, f"meter {meter.id}.keys", str(exc)))
                continue
            except (NgsiModelError, ValueError) as exc:
                self.problems.append(_problem(meter, f"meter {meter.id}", str(exc)))
                continue
            compare = json.loads(json.dumps(iota))
            compare.get("internal_attributes", {}).pop("secrets", None)
            self._add(Resource("device", service, path, iota["device_id"], f"meter {meter.id}", iota, compare,
                               meter._origin))
            self._entity(service, path, entity, meter._origin)
        descriptions: dict[str, str] = {}
        for entry in tenant.subscriptions:
            for body in self._subscriptions(entry):
                description = str(body.get("description") or "")
                if not description:
                    self.problems.append(_problem(entry, "subscription", "a subscription needs a description "
                                                  "(it is how provisioning finds it again)"))
                    continue
                if description in descriptions:
                    self.problems.append(_problem(entry, "subscription", f"description {description!r} is used "
                                                  f"twice (also at {descriptions[description]})"))
                    continue
                descriptions[description] = entry._origin
                self._add(Resource("subscription", service, entry.service_path, description,
                                   f"subscription {description!r}", body, body, entry._origin))

    # -- groups ------------------------------------------------------------------------------------------
    def _group(self, service: str, path: str, group: Group) -> None:
        body: Json = {"apikey": group.apikey, "resource": group.resource, "protocol": group.protocol,
                      "transport": group.transport, "autoprovision": group.autoprovision}
        optional = {"entity_type": group.entity_type, "timezone": group.timezone, "explicitAttrs": group.explicit_attrs,
                    "description": group.description}
        body.update({k: v for k, v in optional.items() if v is not None})
        for name in ("attributes", "commands", "static_attributes"):
            if getattr(group, name):
                body[name] = getattr(group, name)
        if group.config:
            body["internal_attributes"] = group.config
        self._add(Resource("group", service, path, f"{group.resource}|{group.apikey}", f"group {group.apikey}",
                           body, body, group._origin))

    # -- entities ----------------------------------------------------------------------------------------
    def _entity(self, service: str, path: str, body: Json, origin: str) -> None:
        key = f"{body['type']}|{body['id']}"
        self._add(Resource("entity", service, path, key, f"{body['type']} {body['id']}", body, body, origin,
                           body["type"]))

    @staticmethod
    def _place(entity_type: str, place: Substation | Feeder | Building) -> Json:
        common: Json = {"name": place.name, "description": place.description, "address": place.address,
                        "location": place.location.point() if place.location else None}
        if isinstance(place, Substation):
            return substation(place.id, **common, primary_voltage=place.primary_voltage,
                              secondary_voltage=place.secondary_voltage, rated_power=place.rated_power,
                              transformer_count=place.transformer_count,
                              ref_device=[entity_id("Device", d) for d in place.devices] or None)
        if isinstance(place, Feeder):
            return feeder(place.id, **common, ref_substation=entity_id("Substation", place.substation),
                          rated_current=place.rated_current,
                          ref_device=[entity_id("Device", d) for d in place.devices] or None)
        return building(place.id, **common, category=place.category, ref_feeder=_ref("Feeder", place.feeder),
                        ref_substation=_ref("Substation", place.substation),
                        contracted_heat_power=place.contracted_heat_power, customers_count=place.customers_count)

    # -- meters ------------------------------------------------------------------------------------------
    def _meter(self, tenant: Tenant, group: Group, meter: Meter) -> tuple[Json, Json]:
        protocol = meter.protocol or group.protocol
        entity_type = meter.entity_type or group.entity_type or default_entity_type(meter.type, meter.phases)
        device_urn = entity_id("Device", meter.id)
        iota: Json = {"device_id": meter.device_id or meter.id, "entity_name": entity_id(entity_type, meter.id),
                      "entity_type": entity_type, "protocol": protocol, "transport": group.transport,
                      "apikey": group.apikey}
        timezone = meter.timezone or group.timezone or tenant.timezone
        if timezone:
            iota["timezone"] = timezone
        ref_device = _ref_device_attribute(entity_type, device_urn)
        if ref_device is not None:
            iota["static_attributes"] = [ref_device]
        if meter.attributes:
            iota["attributes"] = meter.attributes
        if meter.commands:
            iota["commands"] = [{"name": name, "type": "command"} for name in meter.commands]
        internal: Json = {"meterType": meter.type}
        if meter.model:
            internal["model"] = meter.model
        if meter.address:
            internal["address"] = meter.address
        if meter.keys:
            values = {name: secrets.resolve(ref, self.loaded.base, self.environ) for name, ref in meter.keys.items()}
            internal["key_refs"] = dict(meter.keys)
            internal["key_digests"] = {name: secrets.digest(value) for name, value in values.items()}
            internal["secrets"] = values
        iota["internal_attributes"] = internal
        entity = device(
            meter.id,
            meter_type=meter.type,
            controlled_property=meter.controlled_property,
            name=meter.name,
            description=meter.description,
            location=meter.location.point() if meter.location else None,
            supported_protocol=[TRANSPORT_PROTOCOL[group.transport]] if group.transport in TRANSPORT_PROTOCOL
            else None,
            meter_protocol=protocol,
            serial_number=meter.serial,
            manufacturer_name=meter.manufacturer,
            firmware_version=meter.firmware,
            ref_building=_ref("Building", meter.building),
            ref_feeder=_ref("Feeder", meter.feeder),
            ref_substation=_ref("Substation", meter.substation),
            date_installed=meter.installed,
        )
        return iota, entity

    # -- subscriptions -------------------------------------------------------------------------------------
    def _subscriptions(self, entry: SubscriptionEntry) -> list[Json]:
        if entry.subscription is not None:
            sources: list[tuple[str, str]] = [("inline", json.dumps(entry.subscription))]
        else:
            assert entry.file is not None
            sources = []
            pattern = entry.file
            roots = [self.loaded.base] if Path(pattern).is_absolute() else [self.loaded.base, self.orion_config,
                                                                           self.orion_config.parent]
            for root in roots:
                matches = sorted(glob.glob(str(root / pattern)))
                if matches:
                    sources = [(m, Path(m).read_text(encoding="utf-8")) for m in matches]
                    break
            if not sources and not glob.has_magic(pattern):
                self.problems.append(_problem(entry, "subscription.file", f"{pattern} not found (looked next to "
                                              f"the inventory and in {self.orion_config})"))
        bodies = []
        for name, text in sources:
            try:
                bodies.append(normalized(render_template(text, **{**self.urls, **entry.vars})))
            except KeyError as exc:
                self.problems.append(_problem(entry, "subscription", f"{Path(name).name}: no value for "
                                              f"${{{exc.args[0]}}} (give it in vars or with --var)"))
            except (ValueError, ValidationError) as exc:
                reason = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                self.problems.append(_problem(entry, "subscription", f"{Path(name).name}: {reason}"))
        return bodies


def compile_inventory(loaded: LoadedInventory, urls: Mapping[str, str],
                      environ: Mapping[str, str] | None = None) -> Desired:
    """Every resource the inventory declares; :class:`InventoryError` lists every problem found."""
    return Compiler(loaded, urls, environ).compile()
