"""The values passed between the API and the stores: rows to write, a parsed query, series read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AGGR_METHODS = ("count", "sum", "avg", "min", "max")


@dataclass(slots=True)
class EntityRow:
    """One notified entity: becomes one row of its type's table."""

    entity_id: str
    entity_type: str
    time_index: int
    service_path: str
    attrs: dict[str, tuple[str | None, Any]]
    """attribute name -> (NGSI type, value)."""
    original: dict[str, Any]


@dataclass
class Rejection:
    entity_id: str
    attr: str
    reason: str
    detail: str


@dataclass
class InsertResult:
    rows: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class GeoQuery:
    georel: str
    geometry: str
    coords: list[tuple[float, float]]
    """(lat, lon) pairs, NGSI-v2 order."""
    max_distance: float | None = None
    min_distance: float | None = None


@dataclass
class Query:
    entity_types: list[str] | None = None
    entity_ids: list[str] | None = None
    id_pattern: str | None = None
    attrs: list[str] | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    last_n: int | None = None
    limit: int = 10000
    offset: int = 0
    aggr_method: str | None = None
    aggr_period: str | None = None
    service_paths: list[str] | None = None
    geo: GeoQuery | None = None


@dataclass
class Series:
    """One entity's answer: a time index and, per attribute (original name), a parallel list of values."""

    entity_id: str
    entity_type: str
    index: list[int]
    values: dict[str, list[Any]]


@dataclass
class EntitySummary:
    entity_id: str
    entity_type: str
    last_index: int
