"""The broker's write semantics (create, append, update, replace, delete) on a :class:`WriteTxn`.

Shared by the entity routes and ``/v2/op/update``, so a batch behaves exactly like the single-entity
operations. Each function builds new entity dicts (stored entities are never mutated) and records one
:class:`EntityChange` filled as ``model.py`` documents it.
"""

from __future__ import annotations

from typing import Literal

from flexmeter.contextbroker.model import AlterationType, EntityChange, StoredAttr, StoredEntity
from flexmeter.contextbroker.store import WriteTxn, entity_key

UpdateMode = Literal["append", "appendStrict", "update", "replace"]


class Outcome:
    """What an update did not do: attributes missing (update) or already there (appendStrict)."""

    __slots__ = ("existing", "missing")

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.existing: list[str] = []


def _same(a: StoredAttr, b: StoredAttr) -> bool:
    return a["type"] == b["type"] and a["value"] == b["value"] and a["metadata"] == b["metadata"] \
        and type(a["value"]) is type(b["value"])


def create(txn: WriteTxn, *, service: str, service_path: str, entity_id: str, entity_type: str,
           attrs: dict[str, StoredAttr], expires: float | None, now: float, correlator: str) -> StoredEntity:
    entity: StoredEntity = {
        "id": entity_id, "type": entity_type, "servicePath": service_path, "attrs": attrs,
        "creDate": now, "modDate": now, "expDate": expires,
    }
    txn.put(entity)
    names = frozenset(attrs)
    txn.change(EntityChange(service, service_path, "entityCreate", entity, None, names, names,
                            correlator=correlator))
    return entity


def update(txn: WriteTxn, entity: StoredEntity, incoming: dict[str, StoredAttr], *, mode: UpdateMode,
           service: str, now: float, correlator: str, expires: float | None = None,
           untyped: frozenset[str] = frozenset(), override_metadata: bool = False) -> Outcome:
    """Apply ``incoming`` attributes to ``entity`` with Orion's ``mode`` semantics.

    ``untyped``: attributes whose request gave no type (an existing attribute keeps its type then).
    The entity is written even when some attributes are missing (Orion's PartialUpdate).
    """
    outcome = Outcome()
    old_attrs = entity["attrs"]
    new_attrs: dict[str, StoredAttr] = {} if mode == "replace" else dict(old_attrs)
    updated: list[str] = []
    changed: list[str] = []
    for name, attr in incoming.items():
        previous = old_attrs.get(name)
        if previous is None:
            if mode == "update":
                outcome.missing.append(name)
                continue
            new_attrs[name] = attr
            updated.append(name)
            changed.append(name)
            continue
        if mode == "appendStrict":
            outcome.existing.append(name)
            continue
        previous_md, incoming_md = previous["metadata"], attr["metadata"]
        if not override_metadata and previous_md and previous_md.keys() != incoming_md.keys():
            incoming_md = {**previous_md, **incoming_md}  # metadata are merged unless overridden
        merged: StoredAttr = {
            "type": previous["type"] if name in untyped else attr["type"],
            "value": attr["value"],
            "metadata": incoming_md,
            "creDate": previous["creDate"],
            "modDate": now,
        }
        new_attrs[name] = merged
        updated.append(name)
        if not _same(previous, merged):
            changed.append(name)
    deleted: frozenset[str] = frozenset()
    if mode == "replace":
        deleted = frozenset(n for n in old_attrs if n not in new_attrs)
    if not updated and not deleted and expires is None and (outcome.missing or outcome.existing):
        return outcome  # nothing applied: no write, no notification
    new_entity: StoredEntity = {
        "id": entity["id"], "type": entity["type"], "servicePath": entity["servicePath"],
        "attrs": new_attrs, "creDate": entity["creDate"], "modDate": now,
        "expDate": expires if expires is not None else entity.get("expDate"),
    }
    txn.put(new_entity)
    if txn.forced:
        changed = list(updated)
    alteration: AlterationType = "entityChange" if changed or deleted else "entityUpdate"
    txn.change(EntityChange(service, entity["servicePath"], alteration, new_entity, entity,
                            frozenset(updated), frozenset(changed), deleted, correlator=correlator))
    return outcome


def delete_entity(txn: WriteTxn, entity: StoredEntity, *, service: str, correlator: str) -> None:
    txn.delete(entity_key(entity))
    names = frozenset(entity["attrs"])
    txn.change(EntityChange(service, entity["servicePath"], "entityDelete", entity, entity, names, names,
                            names, correlator=correlator))


def delete_attrs(txn: WriteTxn, entity: StoredEntity, names: list[str], *, service: str, now: float,
                 correlator: str) -> list[str]:
    """Remove attributes; returns the names that did not exist (nothing is written if none did)."""
    missing = [n for n in names if n not in entity["attrs"]]
    present = [n for n in names if n in entity["attrs"]]
    if not present:
        return missing
    new_attrs = {k: v for k, v in entity["attrs"].items() if k not in present}
    new_entity: StoredEntity = {**entity, "attrs": new_attrs, "modDate": now}
    txn.put(new_entity)
    deleted = frozenset(present)
    txn.change(EntityChange(service, entity["servicePath"], "entityChange", new_entity, entity, deleted,
                            deleted, deleted, correlator=correlator))
    return missing
