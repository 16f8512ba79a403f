"""Reading -> NGSI-v2 attributes, as the FIWARE agents map measures.

Precedence of a mapping entry for an ``object_id``: the device's ``attributes``, then its group's, then the
family's default table for the device model. Unmapped keys become ``Text`` attributes named after the key
unless ``explicitAttrs``. ``TimeInstant`` (attribute and per-attribute metadata) is the reading's own time.
Flexmeter additions, documented in docs/iot-agents.md: ``component`` gathers several measures into one
``StructuredValue`` (``activePower.L1``...), and an attribute with an ``expression`` and no ``object_id``
is computed from the other measures (sums, differences).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flexmeter.iot_agents.core.errors import InvalidExpression
from flexmeter.iot_agents.core.expressions import Expressions
from flexmeter.iot_agents.core.family import Family, Reading
from flexmeter.iot_agents.core.timeutil import iso, to_utc

Json = dict[str, Any]
NUMERIC_TYPES = {"Number", "Float", "Integer", "Double"}
_RESERVED_KEYS = frozenset(("id", "type", "TimeInstant"))
"""Reading keys that are never attributes of their own."""


@dataclass
class EntityUpdate:
    """One entity's attributes for ``/v2/op/update`` (append), with its tenant."""

    service: str
    service_path: str
    entity_id: str
    entity_type: str
    attrs: Json = field(default_factory=dict)

    def entity(self) -> Json:
        return {"id": self.entity_id, "type": self.entity_type, **self.attrs}


@dataclass(frozen=True)
class DeviceView:
    """A device with its group's settings folded in: what the mapper needs."""

    device: Json
    group: Json | None

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.device and self.device[key] is not None:
            return self.device[key]
        if self.group and key in self.group and self.group[key] is not None:
            return self.group[key]
        return default

    @property
    def device_id(self) -> str:
        return str(self.device["device_id"])

    @property
    def service(self) -> str:
        return str(self.device.get("service") or (self.group or {}).get("service") or "")

    @property
    def service_path(self) -> str:
        return str(self.device.get("service_path") or (self.group or {}).get("subservice") or "/")

    def entity_type(self, family: Family, model: str | None) -> str:
        return str(self.device.get("entity_type") or (self.group or {}).get("entity_type")
                   or family.entity_type(model))

    def entity_id(self, family: Family, model: str | None) -> str:
        name = self.device.get("entity_name")
        return str(name) if name else f"{self.entity_type(family, model)}:{self.device_id}"

    def model(self, reading_model: str | None) -> str | None:
        internal = self.device.get("internal_attributes")
        if isinstance(internal, dict) and internal.get("model"):
            return str(internal["model"])
        return reading_model

    def attribute_table(self, family: Family, model: str | None) -> list[Json]:
        return [*(self.device.get("attributes") or []), *((self.group or {}).get("attributes") or []),
                *family.default_attributes(model)]

    def static_attributes(self) -> list[Json]:
        by_name: dict[str, Json] = {}
        for attr in [*((self.group or {}).get("static_attributes") or []),
                     *(self.device.get("static_attributes") or [])]:
            by_name[attr["name"]] = attr
        return list(by_name.values())

    def commands(self) -> list[Json]:
        by_name: dict[str, Json] = {}
        for cmd in [*((self.group or {}).get("commands") or []), *(self.device.get("commands") or [])]:
            by_name[cmd["name"]] = cmd
        return list(by_name.values())


def _index(table: Iterable[Json]) -> tuple[dict[str, Json], list[Json]]:
    """First entry wins per object_id (or name); computed entries (expression, no object_id) apart."""
    by_key: dict[str, Json] = {}
    computed: list[Json] = []
    seen_computed: set[str] = set()
    for attr in table:
        key = attr.get("object_id") or None
        if key is None and attr.get("expression"):
            if attr["name"] not in seen_computed:
                seen_computed.add(attr["name"])
                computed.append(attr)
            continue
        by_key.setdefault(str(key or attr["name"]), attr)
    return by_key, computed


def _coerce(value: Any, attr_type: str) -> Any:
    if attr_type in NUMERIC_TYPES and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if attr_type == "Integer" or (number.is_integer() and "." not in value) else number
    return value


@dataclass
class _Plan:
    """What a device's mapping needs, computed once per (device, group, model) registry version."""

    device: Json
    group: Json | None
    entity_type: str
    entity_id: str
    timezone: str | None
    with_time: bool
    explicit: Any
    explicit_names: set[str] | None
    by_key: dict[str, Json]
    computed: list[Json]
    statics: list[Json]
    service: str = ""
    service_path: str = "/"
    simple: bool = False
    """No expression, other entity or component anywhere: the fast path needs no JEXL context."""
    fast: dict[str, tuple[str, str | None, Json | None, bool]] = field(default_factory=dict)
    """object_id -> (name, type or None, metadata or None, kept under explicitAttrs): ``by_key`` digested
    once for the fast path."""
    general: dict[str, _Spec] = field(default_factory=dict)
    """object_id -> its entry digested for the general path (only the kept ones)."""


@dataclass(frozen=True, slots=True)
class _Spec:
    """One mapped attribute, digested once per plan (the general path's per-value work is then lookups)."""

    attr: Json
    name: str
    attr_type: str | None
    expression: str | None
    skip: tuple[Any, ...]
    """``(skipValue,)`` when given, else ``()``"""
    metadata: Json | None
    component: str | None
    other: bool
    """the value goes to another entity (``entity_name``)"""

    @classmethod
    def of(cls, attr: Json) -> _Spec:
        return cls(attr, str(attr["name"]), str(attr["type"]) if attr.get("type") else None,
                   str(attr["expression"]) if attr.get("expression") else None,
                   (attr["skipValue"],) if "skipValue" in attr else (),
                   attr["metadata"] if attr.get("metadata") else None,
                   str(attr["component"]) if attr.get("component") else None, bool(attr.get("entity_name")))


_Digest = tuple[dict[str, Json], list[Json], bool, dict[str, tuple[str, str | None, Json | None, bool]],
                dict[str, "_Spec"]]
"""An attribute table digested: (by object_id, computed entries, simple, the fast path's, the general path's)."""


class Mapper:
    """Stateless but for caches (parsed expressions; per-device plans, keyed by the registry's objects)."""

    def __init__(self, expressions: Expressions | None = None) -> None:
        self.expressions = expressions or Expressions()
        self._plans: dict[tuple[int, int, str | None, str], _Plan] = {}
        self._digests: dict[tuple[Any, ...], tuple[Json | None, _Digest]] = {}

    def _plan(self, view: DeviceView, family: Family, model: str | None) -> _Plan:
        key = (id(view.device), id(view.group), model, family.name)
        plan = self._plans.get(key)
        if plan is not None and plan.device is view.device and plan.group is view.group:
            return plan
        explicit = view.get("explicitAttrs", False)
        names = set(explicit) if isinstance(explicit, list) else None
        by_key, computed, simple, fast, general = self._digest(view, family, model, names)
        plan = _Plan(view.device, view.group, view.entity_type(family, model), view.entity_id(family, model),
                     view.get("timezone"), view.get("timestamp", True) is not False, explicit, names, by_key,
                     computed, view.static_attributes(), view.service, view.service_path, simple, fast, general)
        if len(self._plans) > 100_000:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _digest(self, view: DeviceView, family: Family, model: str | None, names: set[str] | None) -> _Digest:
        """The attribute table digested for both paths; shared by the devices of a group that have no table
        of their own (thousands of meters seen for the first time must not digest the same table each)."""
        shared = not view.device.get("attributes")
        key = (id(view.group), model, family.name, tuple(sorted(names)) if names is not None else None)
        if shared:
            hit = self._digests.get(key)
            if hit is not None and hit[0] is view.group:
                return hit[1]
        by_key, computed = _index(view.attribute_table(family, model))
        simple = not computed and not any(
            a.get("expression") or a.get("entity_name") or a.get("component") for a in by_key.values())
        fast = {key: (str(attr["name"]), str(attr["type"]) if attr.get("type") else None,
                      attr["metadata"] if attr.get("metadata") else None,
                      names is None or str(attr["name"]) in names or key in names)
                for key, attr in by_key.items()}
        general = {key: _Spec.of(attr) for key, attr in by_key.items() if fast[key][3]}
        digest = (by_key, computed, simple, fast, general)
        if shared:
            if len(self._digests) > 10_000:
                self._digests.clear()
            self._digests[key] = (view.group, digest)
        return digest

    def map(self, reading: Reading, view: DeviceView, family: Family, received_at: datetime) -> list[EntityUpdate]:
        model = view.model(reading.model)
        plan = self._plan(view, family, model)
        entity_type, entity_id = plan.entity_type, plan.entity_id
        observed = to_utc(reading.observed_at, plan.timezone, view.device_id, received_at)
        stamp = iso(observed)
        if plan.simple:
            return self._map_simple(reading, plan, stamp)
        with_time = plan.with_time
        explicit, explicit_names = plan.explicit, plan.explicit_names
        general, computed = plan.general, plan.computed
        time_meta = {"type": "DateTime", "value": stamp}
        units = reading.units

        main = EntityUpdate(view.service, view.service_path, entity_id, entity_type)
        others: dict[tuple[str, str], EntityUpdate] = {}
        context: Json = {"id": view.device_id, "type": entity_type, "entity_name": entity_id,
                         "service": view.service, "subservice": view.service_path, "TimeInstant": stamp}
        for attr in plan.statics:
            context.setdefault(attr["name"], attr.get("value"))
        context.update(reading.values)

        def target(attr: Json) -> EntityUpdate:
            other_id = self._entity_name(str(attr["entity_name"]), context)
            other_type = str(attr.get("entity_type") or entity_type)
            key = (other_id, other_type)
            if key not in others:
                others[key] = EntityUpdate(view.service, view.service_path, other_id, other_type)
            return others[key]

        def put(spec: _Spec, attr_type: str, value: Any, unit: str | None) -> None:
            update = target(spec.attr) if spec.other else main
            metadata: Json = dict(spec.metadata) if spec.metadata else {}
            if unit and "unitCode" not in metadata:
                metadata["unitCode"] = {"type": "Text", "value": unit}
            if with_time:
                metadata["TimeInstant"] = time_meta
            if spec.component:
                existing = update.attrs.get(spec.name)
                if existing is None:
                    existing = update.attrs[spec.name] = {"type": spec.attr_type or "StructuredValue", "value": {},
                                                          "metadata": metadata}
                existing["value"][spec.component] = value
                return
            update.attrs[spec.name] = {"type": attr_type, "value": value, "metadata": metadata}

        evaluate = self.expressions.evaluate
        implicit = explicit is not True and explicit_names is None  # unmapped keys become Text attributes
        for key, value in reading.values.items():
            spec = general.get(key)
            if spec is None:
                if implicit and value is not None and key not in plan.by_key and key not in _RESERVED_KEYS:
                    put(_Spec.of({"name": key}), "Text", value, units.get(key))  # iotagent-json's default type
                continue
            if key in _RESERVED_KEYS:
                continue
            if spec.expression is not None:
                value = evaluate(spec.expression, context)
                if value is None or (spec.skip and value == spec.skip[0]):
                    continue
            elif value is None:
                continue
            attr_type = spec.attr_type or _json_type(value)
            put(spec, attr_type, _coerce(value, attr_type), units.get(key) if units else None)
            context.setdefault(spec.name, value)

        for attr in computed:
            name = str(attr["name"])
            if explicit_names is not None and name not in explicit_names:
                continue
            value = evaluate(str(attr["expression"]), context)
            if value is None or ("skipValue" in attr and value == attr["skipValue"]):
                continue
            attr_type = str(attr.get("type") or _json_type(value))
            put(_Spec.of(attr), attr_type, _coerce(value, attr_type), None)

        updates = [main, *others.values()]
        for update in updates:
            if not update.attrs:
                continue
            if update is main:
                for static in plan.statics:
                    entry: Json = {"type": static.get("type", "Text"), "value": static.get("value")}
                    if static.get("metadata"):
                        entry["metadata"] = static["metadata"]
                    update.attrs.setdefault(static["name"], entry)
            if with_time:
                update.attrs["TimeInstant"] = time_meta
        return [u for u in updates if u.attrs]

    @staticmethod
    def _map_simple(reading: Reading, plan: _Plan, stamp: str) -> list[EntityUpdate]:
        """The common case (plain object_id -> name/type/metadata), without closures or JEXL context."""
        attrs: Json = {}
        time_meta = {"type": "DateTime", "value": stamp}
        explicit, explicit_names = plan.explicit, plan.explicit_names
        units = reading.units
        fast = plan.fast
        for key, value in reading.values.items():
            if value is None or key in ("id", "type", "TimeInstant"):
                continue
            spec = fast.get(key)
            if spec is None:
                if explicit is True or explicit_names is not None:
                    continue
                name, attr_type, metadata = key, "Text", {}
            else:
                name, known_type, template, kept = spec
                if not kept:
                    continue
                attr_type = known_type or _json_type(value)
                metadata = dict(template) if template else {}
                if attr_type in NUMERIC_TYPES and isinstance(value, str):
                    value = _coerce(value, attr_type)
            unit = units.get(key) if units else None
            if unit and "unitCode" not in metadata:
                metadata["unitCode"] = {"type": "Text", "value": unit}
            if plan.with_time:
                metadata["TimeInstant"] = time_meta
            attrs[name] = {"type": attr_type, "value": value, "metadata": metadata}
        if not attrs:
            return []
        for static in plan.statics:
            entry: Json = {"type": static.get("type", "Text"), "value": static.get("value")}
            if static.get("metadata"):
                entry["metadata"] = static["metadata"]
            attrs.setdefault(static["name"], entry)
        if plan.with_time:
            attrs["TimeInstant"] = time_meta
        return [EntityUpdate(plan.service, plan.service_path, plan.entity_id, plan.entity_type, attrs)]

    def _entity_name(self, expression: str, context: Json) -> str:
        try:
            value = self.expressions.evaluate(expression, context)
        except InvalidExpression:
            return expression
        return value if isinstance(value, str) and value else expression


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, dict):
        return "StructuredValue"
    if isinstance(value, list):
        return "StructuredValue"
    return "Text"
