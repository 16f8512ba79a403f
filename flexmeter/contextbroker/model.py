"""The broker's internal entity form, and the change event that links the store to subscriptions.

Shared by the store and API (entities), the query language (q/mq/geo) and the subscription engine, so
that each of them can be written and tested on its own.

An entity is kept *normalized*: every attribute has ``type``, ``value`` and ``metadata`` (a dict of
``{name: {"type": ..., "value": ...}}``), plus the builtin timestamps as POSIX seconds (floats, UTC).
Attribute order is the order of creation (dicts keep insertion order), as Orion renders it.
Values of type ``DateTime`` (attributes and metadata) are stored as Orion renders them, normalized on write
to ``2024-01-01T00:00:00.000Z`` (see ``timeutil``); a ``dateExpires`` attribute is kept as ``expDate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class StoredMetadata(TypedDict):
    type: str
    value: Any


class StoredAttr(TypedDict):
    type: str
    value: Any
    metadata: dict[str, StoredMetadata]
    creDate: float
    modDate: float


class StoredEntity(TypedDict):
    id: str
    type: str
    servicePath: str
    attrs: dict[str, StoredAttr]
    creDate: float
    modDate: float
    expDate: float | None


AlterationType = Literal["entityCreate", "entityUpdate", "entityChange", "entityDelete"]


@dataclass(frozen=True)
class EntityChange:
    """One committed change of one entity, handed to the subscription engine after the commit.

    - ``service``: the tenant ("" for the default tenant), already normalized (lowercase).
    - ``alteration``: ``entityCreate``; ``entityChange`` when an update changed at least one value (or
      type or metadata); ``entityUpdate`` when an update changed nothing; ``entityDelete``.
    - ``entity``: the state after the change (for a delete: the state before it).
    - ``previous``: the state before the change (None on create).
    - ``updated_attrs``: the attributes the request named (for an update), or all attributes (create,
      delete); ``changed_attrs``: the subset whose type, value or metadata actually changed.
    - ``deleted_attrs``: attributes removed by this change (DELETE of an attribute, ``replace``).
    """

    service: str
    service_path: str
    alteration: AlterationType
    entity: StoredEntity
    previous: StoredEntity | None
    updated_attrs: frozenset[str]
    changed_attrs: frozenset[str]
    deleted_attrs: frozenset[str] = frozenset()
    correlator: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
