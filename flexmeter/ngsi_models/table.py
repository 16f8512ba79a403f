"""One table per entity type: source quantity → attribute → NGSI type → unitCode, and the code that obeys it.

Each builder is a typed function whose keyword parameters are the table's ``param`` column; it hands its
arguments to :func:`assemble`, which converts every value by its row (exact numbers, ranges the Smart
Data Model sets, enums, phase keys, UTC date-times, entity references) and writes the normalized
NGSI-v2 entity with ``unitCode`` metadata. docs/data-models.md renders the same tables
(:mod:`flexmeter.ngsi_models.docs`), and a test checks that the builders' signatures match them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

from flexmeter.ngsi_models.base import format_datetime
from flexmeter.ngsi_models.entity import check_identifier
from flexmeter.ngsi_models.errors import InvalidIdentifierError, InvalidValueError, UnknownFieldError

Number = Decimal | int | float
Json = dict[str, Any]

#: The Smart Data Models' EntityIdentifierType pattern (common-schema.json): ids builders emit must match it.
SDM_ID_PATTERN = re.compile(r"^[\w\-\.\{\}\$\+\*\[\]`|~^@!,:\\]+$")
URN_PREFIX = "urn:ngsi-ld:"


class Kind(Enum):
    """How a row's input becomes its attribute value (and which NGSI type it gets)."""

    NUMBER = "Number"
    INTEGER = "Number (integer)"
    FLAG = "Number (0/1)"
    PHASES = "StructuredValue (per phase)"
    PHASE_FLAGS = "StructuredValue (per phase, boolean)"
    TEXT = "Text"
    ENUM = "Text (enum)"
    ENUM_LIST = "StructuredValue (list of enum)"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    REF = "Relationship"
    REF_LIST = "StructuredValue (list of ids)"
    OBJECT = "StructuredValue"
    GEO = "geo:json"


_NGSI_TYPES = {
    Kind.NUMBER: "Number",
    Kind.INTEGER: "Number",
    Kind.FLAG: "Number",
    Kind.PHASES: "StructuredValue",
    Kind.PHASE_FLAGS: "StructuredValue",
    Kind.TEXT: "Text",
    Kind.ENUM: "Text",
    Kind.ENUM_LIST: "StructuredValue",
    Kind.BOOLEAN: "Boolean",
    Kind.DATETIME: "DateTime",
    Kind.REF: "Relationship",
    Kind.REF_LIST: "StructuredValue",
    Kind.OBJECT: "StructuredValue",
    Kind.GEO: "geo:json",
}

#: Characters Orion refuses in string values, also inside StructuredValues (implementation notes,
#: "Forbidden characters"); a builder refuses them rather than have a whole batch rejected.
ORION_FORBIDDEN_IN_VALUES = frozenset("<>\"'=;()")

THREE_PHASES = ("L1", "L2", "L3")
THREE_PHASES_N = ("L1", "L2", "L3", "N")
LINE_TO_LINE = ("L12", "L23", "L31")


@dataclass(frozen=True)
class Row:
    """One attribute of an entity type: where its value comes from and how it is written."""

    attribute: str
    kind: Kind
    quantity: str
    unit: str | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    keys: tuple[str, ...] = ()
    enum: tuple[str, ...] = ()
    extension: bool = False
    required: bool = False
    #: the builder keyword; by default the attribute name in snake_case
    param: str = ""
    #: shown in the unit column when the unit depends on another input (e.g. the commodity)
    unit_note: str = ""

    #: the attribute's NGSI type, from ``kind``
    ngsi_type: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if not self.param:
            object.__setattr__(self, "param", snake_case(self.attribute))
        object.__setattr__(self, "ngsi_type", _NGSI_TYPES[self.kind])


@dataclass(frozen=True)
class EntityTable:
    """An entity type's rows plus how the type is identified and timed."""

    entity_type: str
    summary: str
    rows: tuple[Row, ...]
    #: the Smart Data Model it follows (folder under ../shared/sdm), or None for a project-own type
    sdm_model: str | None
    #: add ``TimeInstant`` (the observation time) as an attribute
    time_instant: bool = True
    #: add ``timestamp`` metadata to measured attributes (ThreePhaseAcMeasurement has no dateObserved)
    timestamp_metadata: bool = False
    notes: tuple[str, ...] = field(default=())

    def row(self, param: str) -> Row:
        try:
            return self.index[param][1]
        except KeyError:
            raise UnknownFieldError(f"{self.entity_type} has no input {param!r}") from None

    @cached_property
    def params(self) -> tuple[str, ...]:
        return tuple(row.param for row in self.rows)

    @cached_property
    def index(self) -> dict[str, tuple[int, Row]]:
        """Builder keyword → (position in the table, row)."""
        return {row.param: (position, row) for position, row in enumerate(self.rows)}

    @cached_property
    def required(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.required)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class GeoPoint(NamedTuple):
    """A WGS84 point; GeoJSON order is longitude first."""

    longitude: float
    latitude: float

    def geojson(self) -> Json:
        return {"type": "Point", "coordinates": [self.longitude, self.latitude]}


# -- identifiers ------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def entity_id(entity_type: str, local_id: str) -> str:
    """The SDM-style id ``urn:ngsi-ld:<Type>:<local id>``; an id that already is a URN is kept as it is."""
    full = local_id if local_id.startswith(URN_PREFIX) else f"{URN_PREFIX}{entity_type}:{local_id}"
    return check_entity_ref(full)


@lru_cache(maxsize=65536)
def check_entity_ref(value: str) -> str:
    """An entity id both Orion (field syntax) and the Smart Data Models (id pattern) accept."""
    check_identifier(value, "entity id")
    if not SDM_ID_PATTERN.match(value):
        raise InvalidIdentifierError(f"entity id {value!r} has characters the Smart Data Models do not allow")
    return value


# -- values -----------------------------------------------------------------------------------------


def json_number(value: Any, what: str) -> int | float:
    """A JSON number for ``value``, exactly: integral Decimals become ints, others the float that prints
    back as the same decimal (so ``Decimal("230.1")`` is written ``230.1``). More digits than a double
    carries is refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise InvalidValueError(f"{what}: expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(f"{what}: {value} is not a finite number")
        return value
    if not value.is_finite():
        raise InvalidValueError(f"{what}: {value} is not a finite number")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    try:
        exact = Decimal(repr(as_float)) == value
    except InvalidOperation:  # pragma: no cover - repr of a finite float always parses
        exact = False
    if not exact:
        raise InvalidValueError(f"{what}: {value} has more digits than JSON numbers carry exactly")
    return as_float


def _bounded(row: Row, number: int | float, what: str) -> int | float:
    # int/float compare exactly with Decimal in Python
    if row.minimum is not None and number < row.minimum:
        raise InvalidValueError(f"{what}: {number} is below the minimum {row.minimum}")
    if row.maximum is not None and number > row.maximum:
        raise InvalidValueError(f"{what}: {number} is above the maximum {row.maximum}")
    return number


def _check_keys(row: Row, value: Any, what: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidValueError(f"{what}: expected a non-empty mapping of phase to value")
    if not keys:
        raise UnknownFieldError(f"{what}: not defined for a single-phase installation")
    unknown = [k for k in value if k not in keys]
    if unknown:
        raise UnknownFieldError(f"{what}: unknown phase key(s) {unknown}; allowed {list(keys)}")
    return value


def single_phase_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """A single-phase installation's sub-properties: ``L`` (as ACMeasurement's spec says), plus ``N`` if the
    quantity has a neutral; none for line-to-line quantities."""
    if "L1" not in keys:
        return ()
    return ("L", "N") if "N" in keys else ("L",)


def convert(row: Row, value: Any, single_phase: bool = False) -> Any:
    """The attribute value for ``value`` by ``row``'s kind, range, enum and keys."""
    what = row.attribute
    kind = row.kind
    if kind is Kind.NUMBER:
        return _bounded(row, json_number(value, what), what)
    if kind is Kind.INTEGER:
        number = json_number(value, what)
        if isinstance(number, float):
            raise InvalidValueError(f"{what}: {value} is not a whole number")
        return _bounded(row, number, what)
    if kind is Kind.FLAG:
        if value not in (0, 1) or not isinstance(value, bool | int):
            raise InvalidValueError(f"{what}: expected a boolean or 0/1, got {value!r}")
        return int(value)
    if kind is Kind.PHASES:
        keys = single_phase_keys(row.keys) if single_phase else row.keys
        mapping = _check_keys(row, value, what, keys)
        return {k: _bounded(row, json_number(mapping[k], f"{what}.{k}"), f"{what}.{k}") for k in keys if k in mapping}
    if kind is Kind.PHASE_FLAGS:
        keys = single_phase_keys(row.keys) if single_phase else row.keys
        mapping = _check_keys(row, value, what, keys)
        for k, flag in mapping.items():
            if not isinstance(flag, bool):
                raise InvalidValueError(f"{what}.{k}: expected a boolean, got {flag!r}")
        return {k: mapping[k] for k in keys if k in mapping}
    if kind is Kind.TEXT:
        if not isinstance(value, str):
            raise InvalidValueError(f"{what}: expected text, got {type(value).__name__}")
        check_text(value, what)
        return value
    if kind is Kind.ENUM:
        text = value.value if isinstance(value, Enum) else value
        if text not in row.enum:
            raise InvalidValueError(f"{what}: {value!r} is not one of {list(row.enum)}")
        return text
    if kind is Kind.ENUM_LIST:
        items = _sequence(value, what)
        for item in items:
            if item not in row.enum:
                raise InvalidValueError(f"{what}: {item!r} is not one of {list(row.enum)}")
        return list(dict.fromkeys(items))
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidValueError(f"{what}: expected a boolean, got {value!r}")
        return value
    if kind is Kind.DATETIME:
        if not isinstance(value, datetime):
            raise InvalidValueError(f"{what}: expected a datetime, got {type(value).__name__}")
        return format_datetime(value)
    if kind is Kind.REF:
        if not isinstance(value, str):
            raise InvalidValueError(f"{what}: expected an entity id, got {type(value).__name__}")
        return check_entity_ref(value)
    if kind is Kind.REF_LIST:
        items = _sequence(value, what)
        if len(set(items)) != len(items):
            raise InvalidValueError(f"{what}: duplicate entity ids in {items}")
        return [check_entity_ref(item) for item in items]
    if kind is Kind.GEO:
        if isinstance(value, GeoPoint):
            return value.geojson()
        if isinstance(value, Mapping) and "type" in value and "coordinates" in value:
            return dict(value)
        raise InvalidValueError(f"{what}: expected a GeoPoint or a GeoJSON geometry")
    if kind is Kind.OBJECT:
        if not isinstance(value, Mapping | list):
            raise InvalidValueError(f"{what}: expected a JSON object or array")
        check_text(value, what)
        return value
    raise AssertionError(kind)  # pragma: no cover


def check_text(value: Any, what: str) -> None:
    """Refuse strings (at any depth of a JSON value) with characters Orion forbids in attribute values."""
    if isinstance(value, str):
        bad = ORION_FORBIDDEN_IN_VALUES.intersection(value)
        if bad:
            raise InvalidValueError(f"{what}: {value!r} has characters Orion forbids in values: {sorted(bad)}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, what)
            check_text(item, f"{what}.{key}")
    elif isinstance(value, list):
        for item in value:
            check_text(item, what)


def _sequence(value: Any, what: str) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidValueError(f"{what}: expected a non-empty list")
    return list(value)


def assemble(
    table: EntityTable,
    local_id: str,
    values: Mapping[str, Any],
    *,
    observed_at: datetime | None = None,
    single_phase: bool = False,
    units: Mapping[str, str] | None = None,
) -> Json:
    """The normalized entity for ``values`` (builder keyword → input; ``None`` means "not measured")."""
    entity: Json = {"id": entity_id(table.entity_type, local_id), "type": table.entity_type}
    timestamp = format_datetime(observed_at) if observed_at is not None else None
    index = table.index
    given: list[tuple[int, Row, Any]] = []
    for param, value in values.items():
        if value is None:
            continue
        try:
            position, row = index[param]
        except KeyError:
            raise UnknownFieldError(f"{table.entity_type} has no input {param!r}") from None
        given.append((position, row, value))
    for row in table.required:
        if values.get(row.param) is None:
            raise InvalidValueError(f"{table.entity_type}: {row.attribute} is required")
    given.sort(key=lambda item: item[0])
    stamp_kinds = (Kind.NUMBER, Kind.PHASES) if table.timestamp_metadata and timestamp is not None else ()
    for _, row, value in given:
        attribute: Json = {"type": row.ngsi_type, "value": convert(row, value, single_phase)}
        unit = units.get(row.param, row.unit) if units else row.unit
        if unit is not None or row.kind in stamp_kinds:
            metadata: Json = {}
            if unit is not None:
                metadata["unitCode"] = {"type": "Text", "value": unit}
            if row.kind in stamp_kinds:
                metadata["timestamp"] = {"type": "DateTime", "value": timestamp}
            attribute["metadata"] = metadata
        entity[row.attribute] = attribute
    if table.time_instant and timestamp is not None:
        entity["TimeInstant"] = {"type": "DateTime", "value": timestamp}
    return entity


def builder_values(arguments: Mapping[str, Any], *skip: str) -> dict[str, Any]:
    """A builder's keyword arguments (from ``locals()``), minus the ones that are not table inputs."""
    return {k: v for k, v in arguments.items() if k not in skip}
