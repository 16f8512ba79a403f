"""Desired vs remote: what to create, update or leave alone, with the fields that differ.

Only what the inventory declares is compared ("desired is a subset of remote"): attributes a reading
added to an entity, or defaults an endpoint filled in, are not differences. Secrets are never compared
nor shown: a changed key shows as a changed digest, rendered ``(changed)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from flexmeter.provisioning.desired import STATIC_TYPES, Desired, Resource
from flexmeter.provisioning.remote import Remote
from flexmeter.provisioning.subscriptions import READ_ONLY, READ_ONLY_NOTIFICATION

Json = dict[str, Any]
MASKED = ("key_digests", "secrets")
#: names of values that are secrets wherever they appear (as the IoT Agents treat them)
SECRET_NAME = re.compile(r"(^|[_\-.])(key|keys|guek|gak|gbek|akey|secret|password|passwd|token|pin)$", re.I)


@dataclass(frozen=True)
class FieldDiff:
    field: str
    remote: Any
    wanted: Any


@dataclass
class Change:
    """One resource's action: ``create``, ``update``, ``unchanged``, or ``extra`` (remote, not declared)."""

    action: str
    kind: str
    service: str
    service_path: str
    key: str
    label: str
    origin: str = ""
    fields: list[FieldDiff] = field(default_factory=list)
    resource: Resource | None = None
    remote_id: str | None = None

    def as_json(self) -> Json:
        return {"action": self.action, "kind": self.kind, "service": self.service,
                "servicePath": self.service_path, "item": self.label, "origin": self.origin,
                "fields": [{"field": f.field, "remote": f.remote, "inventory": f.wanted} for f in self.fields]}


@dataclass
class Plan:
    changes: list[Change]

    def by_action(self, *actions: str) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for change in self.changes:
            row = table.setdefault(change.kind, {"create": 0, "update": 0, "unchanged": 0, "extra": 0})
            row[change.action] = row.get(change.action, 0) + 1
        return table

    @property
    def pending(self) -> list[Change]:
        return self.by_action("create", "update")


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == "" or value is False or value == 0


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=0) or a == b
    return bool(a == b)


def subset_diff(wanted: Any, remote: Any, path: str = "") -> list[FieldDiff]:
    """Fields of ``wanted`` that ``remote`` lacks or holds differently (dicts compared key by key,
    lists and scalars as a whole; an absent remote key equals an empty wanted value)."""
    if isinstance(wanted, dict):
        if remote is None and all(_empty(v) for v in wanted.values()):
            return []
        if not isinstance(remote, dict):
            return [FieldDiff(path, remote, wanted)]
        diffs: list[FieldDiff] = []
        for key, value in wanted.items():
            sub = f"{path}.{key}" if path else key
            if key not in remote:
                if not _empty(value):
                    diffs.append(FieldDiff(sub, None, value))
                continue
            diffs.extend(subset_diff(value, remote[key], sub))
        return diffs
    if isinstance(wanted, list) and isinstance(remote, list):
        if len(wanted) == len(remote) and all(not subset_diff(w, r) for w, r in zip(wanted, remote, strict=True)):
            return []
        return [FieldDiff(path, remote, wanted)]
    if remote is None and _empty(wanted):
        return []
    return [] if _equal(wanted, remote) else [FieldDiff(path, remote, wanted)]


def _strip_secrets(body: Json) -> Json:
    """A device or group without the secret values in its ``internal_attributes`` (a real IoT Agent may
    return them; flexmeter's moves them to its key store). ``key_refs``/``key_digests`` stay: not secret."""
    internal = body.get("internal_attributes")
    if not isinstance(internal, dict):
        return body
    kept = {k: v for k, v in internal.items() if k != "secrets" and not (
        SECRET_NAME.search(str(k)) and isinstance(v, str | int))}
    return {**body, "internal_attributes": kept}


def _mask(diffs: list[FieldDiff]) -> list[FieldDiff]:
    hidden = FieldDiff("", "(old key, not shown)", "(new key, not shown)")
    return [FieldDiff(d.field, hidden.remote, hidden.wanted) if any(m in d.field.split(".") for m in MASKED)
            else d for d in diffs]


def compare(resource: Resource, remote: Json) -> list[FieldDiff]:
    if resource.kind == "device":
        return _mask(subset_diff(resource.compare, _strip_secrets(remote)))
    if resource.kind == "group":
        return _mask(subset_diff(_strip_secrets(resource.compare), _strip_secrets(remote)))
    if resource.kind == "subscription":
        cleaned = {k: v for k, v in remote.items() if k not in READ_ONLY}
        notification = {k: v for k, v in (cleaned.get("notification") or {}).items()
                        if k not in READ_ONLY_NOTIFICATION}
        cleaned["notification"] = notification
        return subset_diff(resource.compare, cleaned)
    wanted = {k: v for k, v in resource.compare.items() if k not in ("id", "type")}
    return subset_diff(wanted, remote)


def make_plan(desired: Desired, remote: Remote, *, with_extra: bool = False) -> Plan:
    changes: list[Change] = []
    declared = set()
    for resource in desired.resources:
        declared.add(resource.ident)
        found = remote.get(resource.ident)
        base = (resource.kind, resource.service, resource.service_path, resource.key, resource.label,
                resource.origin)
        if found is None:
            changes.append(Change("create", *base, resource=resource))
            continue
        diffs = compare(resource, found)
        changes.append(Change("update" if diffs else "unchanged", *base, fields=diffs, resource=resource,
                              remote_id=remote.ids.get(resource.ident)))
    if with_extra:
        for ident, body in remote.items.items():
            kind, service, path, key = ident
            if ident in declared or kind == "subscription":
                continue
            if kind == "entity" and key.split("|", 1)[0] not in STATIC_TYPES:
                continue
            label = {"group": f"group {body.get('apikey')}", "device": f"meter {key}"}.get(
                kind, key.replace("|", " "))
            changes.append(Change("extra", kind, service, path, key, label))
    return Plan(changes)
