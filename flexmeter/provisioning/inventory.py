"""Load an inventory (YAML, plus the CSV meter lists it names) and check it, reporting every problem with
its file and line; nothing is sent anywhere until the whole inventory is valid."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from flexmeter.provisioning.errors import InventoryError, Problem
from flexmeter.provisioning.schema import SERVICE_NAME, Inventory, Meter, MeterFile, Tenant
from flexmeter.provisioning.source import dotted, line_of, load_yaml


@dataclass
class LoadedInventory:
    """A valid inventory and where it was read from (relative paths are relative to ``base``)."""

    inventory: Inventory
    path: Path
    base: Path
    problems: list[Problem] = field(default_factory=list)


def _validation_problems(exc: ValidationError, document: Any, file: str,
                         prefix: tuple[int | str, ...] = ()) -> list[Problem]:
    problems = []
    for error in exc.errors():
        location = tuple(part for part in error["loc"] if not isinstance(part, str) or not part.startswith(
            "function-"))
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown key (misspelt?)"
        elif error["type"] == "missing":
            reason = "required and missing"
        problems.append(Problem(file, line_of(document, location), dotted(prefix + location), reason))
    return problems


def _set_origins(model: BaseModel, document: Any, file: str, location: tuple[int | str, ...]) -> None:
    """Give every item its ``file:line`` for later messages."""
    line = line_of(document, location)
    if hasattr(model, "_origin"):
        model._origin = f"{file}:{line}" if line else file
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            _set_origins(value, document, file, (*location, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    _set_origins(item, document, file, (*location, name, index))


def _nest(row: dict[str, str]) -> dict[str, Any]:
    """CSV columns with dots (``address.primary``) become nested keys; empty cells are absent;
    ``commands`` and ``controlled_property`` cells are ``;``-separated lists."""
    result: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell.strip() == "":
            continue
        value: Any = cell.strip()
        if column in ("commands", "controlled_property"):
            value = [part.strip() for part in value.split(";") if part.strip()]
        target = result
        parts = column.strip().split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


def _merge(defaults: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in row.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_meter_csv(path: Path, entry: MeterFile, shown: str) -> tuple[list[Meter], list[Problem]]:
    """The meters of a CSV file; problems carry the CSV line (quoted multi-line cells counted right)."""
    meters: list[Meter] = []
    problems: list[Problem] = []
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        return [], [Problem(shown, None, "", f"cannot read the meter list: {exc.strerror or exc}")]
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in reader.fieldnames:
            return [], [Problem(shown, 1, "header", "the first line must name the columns, including 'id'")]
        known = set(Meter.model_fields)
        for column in reader.fieldnames:
            if column.strip().split(".")[0] not in known:
                problems.append(Problem(shown, 1, f"column {column!r}", "unknown meter field"))
        if problems:
            return [], problems
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                problems.append(Problem(shown, reader.line_num, "", f"CSV: {exc}"))
                break
            if None in row:
                problems.append(Problem(shown, start, "", "more cells than columns"))
                continue
            data = _merge(entry.defaults, _nest(row))
            try:
                meter = Meter.model_validate(data)
            except ValidationError as exc:
                for error in exc.errors():
                    column = ".".join(str(p) for p in error["loc"])
                    reason = error["msg"].removeprefix("Value error, ")
                    if error["type"] == "missing":
                        reason = "required and missing"
                    problems.append(Problem(shown, start, f"column {column}", reason))
                continue
            meter._origin = f"{shown}:{start}"
            meters.append(meter)
    return meters, problems


def _items(tenant: Tenant) -> Iterator[tuple[str, Any]]:
    for kind in ("groups", "substations", "feeders", "buildings", "meters"):
        for item in getattr(tenant, kind):
            yield kind, item


def check_references(tenant: Tenant) -> list[Problem]:
    """Unique ids, known groups/places, declared service paths."""
    problems: list[Problem] = []

    def problem(item: Any, where: str, reason: str) -> None:
        file, _, line = item._origin.rpartition(":")
        if not file:
            file, line = line, ""
        problems.append(Problem(file, int(line) if line.isdigit() else None, where, reason))

    seen: dict[tuple[str, str], Any] = {}
    for kind, item in _items(tenant):
        key = (kind, item.apikey if kind == "groups" else item.id)
        if key in seen:
            problem(item, f"{kind[:-1]} {key[1]}", f"declared twice (first at {seen[key]._origin})")
        else:
            seen[key] = item
    agent_ids: dict[str, Any] = {}
    for meter in tenant.meters:
        agent_id = meter.device_id or meter.id
        if agent_id in agent_ids and agent_ids[agent_id] is not meter:
            problem(meter, f"meter {meter.id}.device_id", f"the agent id {agent_id!r} is also meter "
                    f"{agent_ids[agent_id].id}'s ({agent_ids[agent_id]._origin})")
        agent_ids.setdefault(agent_id, meter)
    groups = {g.apikey: g for g in tenant.groups}
    names = {kind: {i.id for i in getattr(tenant, kind)} for kind in ("substations", "feeders", "buildings",
                                                                      "meters")}

    def need(item: Any, what: str, kind: str, ref: str | None) -> None:
        if ref is not None and ref not in names[kind]:
            problem(item, what, f"{kind[:-1]} {ref!r} is not declared in this tenant")

    declared = set(tenant.service_paths)
    default_path = tenant.default_service_path or (tenant.service_paths[0] if len(tenant.service_paths) == 1
                                                   else None)

    def path_ok(item: Any, label: str, path: str | None) -> None:
        if path is None and default_path is None:
            problem(item, label, "no service_path (and the tenant has no default_service_path)")
        elif path is not None and declared and path not in declared:
            problem(item, label, f"service path {path!r} is not in the tenant's service_paths")

    for group in tenant.groups:
        path_ok(group, f"group {group.apikey}", group.service_path)
    for kind in ("substations", "feeders", "buildings"):
        for place in getattr(tenant, kind):
            path_ok(place, f"{kind[:-1]} {place.id}", place.service_path)
    for substation in tenant.substations:
        for device in substation.devices:
            need(substation, f"substation {substation.id}.devices", "meters", device)
    for feeder in tenant.feeders:
        need(feeder, f"feeder {feeder.id}.substation", "substations", feeder.substation)
        for device in feeder.devices:
            need(feeder, f"feeder {feeder.id}.devices", "meters", device)
    for building in tenant.buildings:
        need(building, f"building {building.id}.feeder", "feeders", building.feeder)
        need(building, f"building {building.id}.substation", "substations", building.substation)
    for meter in tenant.meters:
        if meter.group not in groups:
            problem(meter, f"meter {meter.id}.group", f"no service group with apikey {meter.group!r}")
        need(meter, f"meter {meter.id}.building", "buildings", meter.building)
        need(meter, f"meter {meter.id}.feeder", "feeders", meter.feeder)
        need(meter, f"meter {meter.id}.substation", "substations", meter.substation)
    for entry in tenant.subscriptions:
        base = entry.service_path.removesuffix("/#") or "/"
        if declared and base != "/" and not any(p == base or p.startswith(base + "/") for p in declared):
            problem(entry, "subscription.service_path", f"{entry.service_path!r} covers none of the tenant's "
                    "service paths")
    return problems


def load_inventory(path: Path | str, *, service: str | None = None) -> LoadedInventory:
    """Read and check an inventory; ``service`` renames a single-tenant inventory's tenant (or picks one
    tenant of several). Raises :class:`InventoryError` listing every problem."""
    path = Path(path)
    shown = str(path)
    document = load_yaml(path)
    if document is None:
        raise InventoryError([Problem(shown, None, "", "the inventory is empty")])
    if not isinstance(document, dict):
        raise InventoryError([Problem(shown, getattr(document, "line", None), "",
                                      "an inventory is a mapping with 'tenants'")])
    try:
        inventory = Inventory.model_validate(document)
    except ValidationError as exc:
        raise InventoryError(_validation_problems(exc, document, shown)) from exc
    _set_origins(inventory, document, shown, ())
    problems: list[Problem] = []
    base = path.resolve().parent
    for t_index, tenant in enumerate(inventory.tenants):
        for f_index, entry in enumerate(tenant.meter_files):
            csv_path = (base / entry.file) if not Path(entry.file).is_absolute() else Path(entry.file)
            meters, csv_problems = read_meter_csv(csv_path, entry, entry.file)
            if csv_problems:
                line = line_of(document, ("tenants", t_index, "meter_files", f_index, "file"))
                problems.extend(csv_problems)
                problems.append(Problem(shown, line, f"tenants[{t_index}].meter_files[{f_index}]",
                                        f"{len(csv_problems)} problem(s) in {entry.file}"))
            tenant.meters.extend(meters)
    if service is not None:
        _choose_tenant(inventory, service, shown)
    for tenant in inventory.tenants:
        if tenant.service is None:
            problems.append(Problem(shown, None, "tenants", "a tenant without 'service' (give --service)"))
        problems.extend(check_references(tenant))
    services = [t.service for t in inventory.tenants]
    if len(set(services)) != len(services):
        problems.append(Problem(shown, None, "tenants", "a service is declared twice"))
    if problems:
        raise InventoryError(problems)
    return LoadedInventory(inventory, path, base)


def _choose_tenant(inventory: Inventory, service: str, shown: str) -> None:
    if not SERVICE_NAME.match(service):
        raise InventoryError([Problem(shown, None, "--service", f"{service!r} is not a valid Fiware-Service "
                                      "(lowercase letters, digits, _)")])
    if len(inventory.tenants) == 1:
        inventory.tenants[0].service = service
        return
    chosen = [t for t in inventory.tenants if t.service == service]
    if not chosen:
        raise InventoryError([Problem(shown, None, "tenants", f"no tenant {service!r} in this inventory")])
    inventory.tenants = chosen
