"""Building stored entities and change events the way the store does, for engine-level tests."""

from __future__ import annotations

import time
from typing import Any

from flexmeter.contextbroker.model import AlterationType, EntityChange, StoredAttr, StoredEntity


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if value is None:
        return "None"
    return "StructuredValue"


def attr(value: Any, type_: str | None = None, metadata: dict[str, Any] | None = None) -> StoredAttr:
    now = time.time()
    return {"type": type_ or _type_of(value), "value": value, "metadata": metadata or {},
            "creDate": now, "modDate": now}


def entity(entity_id: str, entity_type: str = "Room", path: str = "/", **attrs: Any) -> StoredEntity:
    now = time.time()
    return {"id": entity_id, "type": entity_type, "servicePath": path,
            "attrs": {k: attr(v) for k, v in attrs.items()},
            "creDate": now, "modDate": now, "expDate": None}


def created(e: StoredEntity, service: str = "", correlator: str = "corr-1") -> EntityChange:
    names = frozenset(e["attrs"])
    return EntityChange(service, e["servicePath"], "entityCreate", e, None, names, names,
                        correlator=correlator)


def updated(prev: StoredEntity, service: str = "", correlator: str = "corr-2", **values: Any) -> EntityChange:
    new_attrs = dict(prev["attrs"])
    changed = []
    for name, value in values.items():
        fresh = attr(value)
        old = prev["attrs"].get(name)
        if old is None or old["value"] != value or old["type"] != fresh["type"]:
            changed.append(name)
        new_attrs[name] = fresh
    new: StoredEntity = {**prev, "attrs": new_attrs, "modDate": time.time()}
    alteration: AlterationType = "entityChange" if changed else "entityUpdate"
    return EntityChange(service, prev["servicePath"], alteration, new, prev, frozenset(values),
                        frozenset(changed), correlator=correlator)


def deleted(e: StoredEntity, service: str = "") -> EntityChange:
    names = frozenset(e["attrs"])
    return EntityChange(service, e["servicePath"], "entityDelete", e, e, names, names, names,
                        correlator="corr-3")
