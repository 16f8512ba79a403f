"""Orion's JSON rendering of an entity (normalized, keyValues, values) with attrs/metadata filters.

Used by the entity API, the batch query and the notifier, so an entity looks the same everywhere.
Orion's rules kept here:

- ``attrs`` selects attributes (``*`` = every regular attribute); the builtin attributes ``dateCreated``,
  ``dateModified`` and ``dateExpires`` are rendered only when named in ``attrs``.
- ``metadata`` selects metadata (``*`` = every regular metadata); the builtin metadata ``dateCreated`` and
  ``dateModified`` are rendered only when named.
- ``extra_metadata`` (the notifier's ``previousValue``/``actionType``) is added to the named attributes as is;
  the caller decides whether the subscription asked for it.
- DateTime values are stored already in Orion's canonical text (``2024-01-01T00:00:00.000Z``); timestamps of
  the builtins are POSIX floats rendered with :func:`iso_from_posix`.
- In ``values`` mode the values follow the ``attrs`` order when given, else the entity's order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

from flexmeter.contextbroker.model import StoredAttr, StoredEntity, StoredMetadata
from flexmeter.contextbroker.timeutil import iso_from_posix, normalize_iso, posix_from_iso

__all__ = [
    "BUILTIN_ATTRS",
    "BUILTIN_METADATA",
    "RenderMode",
    "iso_from_posix",
    "normalize_iso",
    "posix_from_iso",
    "render_attr",
    "render_entity",
    "selected_attr_names",
]

RenderMode = Literal["normalized", "keyValues", "values"]
BUILTIN_ATTRS = ("dateCreated", "dateModified", "dateExpires")
BUILTIN_METADATA = ("dateCreated", "dateModified")


def _builtin_attr(entity: StoredEntity, name: str) -> StoredAttr | None:
    if name == "dateCreated":
        ts: float | None = entity["creDate"]
    elif name == "dateModified":
        ts = entity["modDate"]
    elif name == "dateExpires":
        ts = entity.get("expDate")
    else:
        return None
    if ts is None:
        return None
    return {"type": "DateTime", "value": iso_from_posix(ts), "metadata": {}, "creDate": ts, "modDate": ts}


def selected_attr_names(entity: StoredEntity, attrs: Sequence[str] | None = None,
                        except_attrs: Sequence[str] | None = None) -> list[str]:
    """The attribute names an ``attrs``/``exceptAttrs`` selection renders, in rendering order."""
    regular = entity["attrs"]
    if not attrs:
        names = list(regular)
    else:
        names = list(regular) if "*" in attrs else []
        seen = set(names)
        for name in attrs:
            if name == "*" or name in seen:
                continue
            if name in regular or _builtin_attr(entity, name) is not None:
                names.append(name)
                seen.add(name)
    if except_attrs:
        excluded = set(except_attrs)
        names = [n for n in names if n not in excluded]
    return names


@lru_cache(maxsize=16384)
def _date_metadata(ts: float) -> dict[str, Any]:
    """A builtin date metadata, shared by every attribute and notification stamped at ``ts`` (never mutated)."""
    return {"type": "DateTime", "value": iso_from_posix(ts)}


class _MetadataPlan:
    """A ``metadata`` selection resolved once per rendering, not once per attribute (the notifier's hot path).

    Stored metadata dicts are ``{"type", "value"}`` and never mutated, so they are shared, not copied; when
    the selection renders exactly the stored metadata, the attribute's stored metadata dict itself is returned
    (renderings are serialized, never changed in place).
    """

    __slots__ = ("created", "every", "modified", "name_set", "names", "stored_only")

    def __init__(self, metadata: Sequence[str] | None) -> None:
        self.every = metadata is None or "*" in metadata
        self.names: tuple[str, ...] = () if self.every or metadata is None else tuple(metadata)
        self.name_set = frozenset(self.names)
        self.created = bool(metadata) and "dateCreated" in metadata  # type: ignore[operator]
        self.modified = bool(metadata) and "dateModified" in metadata  # type: ignore[operator]
        self.stored_only = not self.created and not self.modified

    def render(self, attr: StoredAttr, extra: Mapping[str, StoredMetadata] | None) -> dict[str, Any]:
        stored = attr.get("metadata")
        if not stored:
            stored = {}
        elif self.stored_only and not extra and (self.every or stored.keys() <= self.name_set):
            return stored  # exactly what is stored: the stored dict itself (never mutated, see above)
        if self.every or stored.keys() <= self.name_set:  # every stored metadata is wanted: a C-level copy
            out: dict[str, Any] = dict(stored)
        elif stored:
            out = {name: stored[name] for name in self.names if name in stored}
        else:
            out = {}
        if self.created and "dateCreated" not in stored:
            created = attr.get("creDate")
            if created is not None:
                out["dateCreated"] = _date_metadata(created)
        if self.modified and "dateModified" not in stored:
            modified = attr.get("modDate")
            if modified is not None:
                out["dateModified"] = _date_metadata(modified)
        if extra:
            for name, md in extra.items():
                out[name] = {"type": md["type"], "value": md["value"]}
        return out


def _render_metadata(attr: StoredAttr, metadata: Sequence[str] | None,
                     extra: Mapping[str, StoredMetadata] | None) -> dict[str, Any]:
    return _MetadataPlan(metadata).render(attr, extra)


def render_attr(attr: StoredAttr, *, metadata: Sequence[str] | None = None,
                extra: Mapping[str, StoredMetadata] | None = None) -> dict[str, Any]:
    """One attribute in normalized form: ``{"type", "value", "metadata"}``."""
    return {"type": attr["type"], "value": attr["value"], "metadata": _render_metadata(attr, metadata, extra)}


def render_entity(
    entity: StoredEntity,
    *,
    mode: RenderMode = "normalized",
    attrs: Sequence[str] | None = None,
    except_attrs: Sequence[str] | None = None,
    metadata: Sequence[str] | None = None,
    extra_metadata: Mapping[str, Mapping[str, StoredMetadata]] | None = None,
) -> dict[str, Any] | list[Any]:
    """The entity as Orion renders it in ``mode`` (a list of values in ``values`` mode)."""
    regular = entity["attrs"]
    if not attrs and not except_attrs:
        names: Sequence[str] = list(regular)
    else:
        names = selected_attr_names(entity, attrs, except_attrs)
    if mode == "values":
        values: list[Any] = []
        for name in names:
            attr = regular.get(name) or _builtin_attr(entity, name)
            if attr is not None:
                values.append(attr["value"])
        return values
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    if mode == "keyValues":
        for name in names:
            attr = regular.get(name) or _builtin_attr(entity, name)
            if attr is not None:
                out[name] = attr["value"]
        return out
    plan = _MetadataPlan(metadata)
    render_metadata = plan.render
    for name in names:
        attr = regular.get(name)
        if attr is None:
            builtin = _builtin_attr(entity, name)
            if builtin is not None:
                out[name] = {"type": builtin["type"], "value": builtin["value"], "metadata": {}}
            continue
        extra = extra_metadata.get(name) if extra_metadata else None
        out[name] = {"type": attr["type"], "value": attr["value"], "metadata": render_metadata(attr, extra)}
    return out
