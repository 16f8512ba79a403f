"""The store interface and the SQL both backends share: QuantumLeap's table layout, insert, query, delete.

One table per (tenant, entity type) with columns ``entity_id``, ``entity_type``, ``time_index``,
``fiware_servicepath``, ``__original_ngsi_entity__`` and one column per attribute (lowercased name), as
QuantumLeap lays them out. Table metadata (``md_ets_metadata``: column -> original attribute name and
NGSI type) is cached in memory, so an insert costs no metadata query; it is read from the database only
when a table is not in the cache yet.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from math import isfinite
from typing import Any

from flexmeter.quantumleap import timeindex
from flexmeter.quantumleap.columns import DATETIME, FLOAT, JSON, NUMERIC_KINDS, Misfit, fit, kind_for
from flexmeter.quantumleap.errors import AggregationNotApplicable, AmbiguousId, InvalidHeaderValue
from flexmeter.quantumleap.geo import matches as geo_matches
from flexmeter.quantumleap.model import EntityRow, EntitySummary, InsertResult, Query, Rejection, Series

log = logging.getLogger(__name__)

ENTITY_ID, ENTITY_TYPE, TIME_INDEX = "entity_id", "entity_type", "time_index"
SERVICE_PATH, ORIGINAL, INSTANCE_ID = "fiware_servicepath", "__original_ngsi_entity__", "instanceid"
RESERVED = frozenset({ENTITY_ID, ENTITY_TYPE, TIME_INDEX, SERVICE_PATH, ORIGINAL, INSTANCE_ID})
TENANT_PREFIX, TYPE_PREFIX = "mt", "et"
MAX_BUCKET_SCANS = 200_000
"""Above this many (bucket x attribute) index scans per entity, one GROUP BY pass is cheaper."""
MAX_ENTITIES_PER_BUCKET_PLAN = 64
SCAN_THREADS = 2
"""Bucket scans of one aggregation are split over this many connections (drivers release the GIL)."""
METADATA_TTL = 1.0
"""Seconds a tenant's table list is trusted before a query re-reads it (tables made by other processes)."""
_SERVICE_RE = re.compile(r"^[A-Za-z0-9_]{1,50}$")


def tenant(service: str | None) -> str:
    """Normalised Fiware-Service ('' when absent); QuantumLeap lowercases it into ``mt<service>``."""
    if not service:
        return ""
    if not _SERVICE_RE.match(service):
        raise InvalidHeaderValue(f"Fiware-Service {service!r}: only letters, digits and '_', up to 50")
    return service.lower()


@lru_cache(maxsize=65536)
def column_name(attr: str) -> str:
    """QuantumLeap's column for an attribute: the lowercased name."""
    return attr.lower()


@dataclass
class Column:
    name: str
    attr: str
    ngsi_type: str
    kind: str


_SKIP, _RESERVED_SLOT = -1, -2
MAX_PLANS_PER_BATCH = 4
"""Above this many distinct attribute sets in one type's batch, one general insert (union of columns)."""


@dataclass(frozen=True, slots=True)
class _RowPlan:
    """How rows with one attribute-name sequence become insert parameters: computed once per table shape.

    ``steps`` follows the attribute order of the rows: (slot in the parameter row or _SKIP/_RESERVED_SLOT,
    column kind, attribute name).
    """

    names: tuple[str, ...]
    steps: tuple[tuple[int, str, str], ...]
    width: int


@dataclass
class TableInfo:
    service: str
    entity_type: str
    """The entity type as first notified (tables are per lowercased type, as in QuantumLeap)."""
    columns: dict[str, Column] = field(default_factory=dict)
    plans: dict[tuple[str, ...], _RowPlan] = field(default_factory=dict, compare=False, repr=False)
    """Row builders per attribute-name sequence (a new TableInfo, with empty plans, on every schema change)."""

    def resolve(self, attrs: Sequence[str] | None) -> list[Column]:
        """Columns for the requested attribute names (case-insensitive), or every attribute column."""
        if attrs is None:
            return sorted(self.columns.values(), key=lambda c: c.attr)
        found = []
        for attr in attrs:
            column = self.columns.get(column_name(attr))
            if column is not None and column not in found:
                found.append(column)
        return found

    def entity_attrs(self) -> dict[str, list[str]]:
        """QuantumLeap's ``md_ets_metadata.entity_attrs``: column -> [attribute name, NGSI type]."""
        attrs = {
            ENTITY_TYPE: ["type", "Text"],
            ENTITY_ID: ["id", "Text"],
            TIME_INDEX: [TIME_INDEX, "DateTime"],
        }
        for column in self.columns.values():
            attrs[column.name] = [column.attr, column.ngsi_type]
        return attrs


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store(ABC):
    """A time-series store: writes one notification per transaction, answers QuantumLeap queries."""

    backend = "abstract"
    ph = "?"
    regex_op = "REGEXP"

    def __init__(self) -> None:
        self._tables: dict[tuple[str, str], TableInfo] = {}
        self._loaded_services: dict[str, float] = {}
        self._schema_lock = threading.RLock()
        self._scan_pool = ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="ts-scan")

    # -- backend hooks -------------------------------------------------------------------------------------
    @abstractmethod
    def table_sql(self, service: str, type_key: str) -> str:
        """The quoted SQL name of a type's table."""

    @abstractmethod
    def _load_service(self, service: str) -> dict[str, TableInfo]:
        """Every table of a tenant from ``md_ets_metadata``, keyed by lowercased type."""

    @abstractmethod
    def _create_or_extend(self, info: TableInfo, new: list[Column], create: bool) -> None:
        """Create the table (``create``) or add ``new`` columns, and save the metadata; own transaction."""

    @abstractmethod
    def _write(self, batches: list[tuple[str, Sequence[str], list[list[Any]]]]) -> None:
        """Insert every (table, columns, rows) batch in one transaction: all or nothing."""

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""

    @abstractmethod
    def _execute_write(self, statements: list[tuple[str, Sequence[Any]]]) -> int:
        """Run write statements in one transaction; the summed row counts."""

    @abstractmethod
    def _drop_table(self, info: TableInfo) -> None:
        """Drop a type's table and its metadata."""

    def time_param(self, ms: int) -> Any:
        return ms

    def time_value(self, value: Any) -> int:
        return int(value)

    def to_db(self, kind: str, value: Any) -> Any:
        """A fitted value as bound for its column."""
        if value is None:
            return None
        if kind == JSON:
            return json.dumps(value, separators=(",", ":"))
        if kind == "boolean":
            return 1 if value else 0
        return value

    def from_db(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == DATETIME:
            return timeindex.format_instant(self.time_value(value))
        if kind == JSON:
            return json.loads(value) if isinstance(value, str) else value
        if kind == "boolean":
            return bool(value)
        return value

    def original_param(self, entity: dict[str, Any]) -> Any:
        return json.dumps(entity, separators=(",", ":"))

    @abstractmethod
    def bucket_sql(self, period: str) -> str:
        """An SQL expression over ``time_index`` giving the period's start (as stored)."""

    def close(self) -> None:
        """Release connections (subclasses call this first)."""
        self._scan_pool.shutdown(wait=True)

    @abstractmethod
    def spans_cte(self) -> str:
        """``WITH b(s, lo, hi) AS (...)`` over the bound bucket list (bucket start, scan from, scan to)."""

    @abstractmethod
    def spans_params(self, spans: list[tuple[int, int, int]]) -> list[Any]:
        """The parameters :meth:`spans_cte` binds."""

    def healthy(self) -> bool:
        try:
            self._read("SELECT 1", [])
        except Exception:
            return False
        return True

    # -- metadata cache ------------------------------------------------------------------------------------
    def _service_tables(self, service: str, refresh: bool = False) -> dict[str, TableInfo]:
        loaded = self._loaded_services.get(service)
        if loaded is None or (refresh and time.monotonic() - loaded > METADATA_TTL):
            with self._schema_lock:
                for key, info in self._load_service(service).items():
                    cached = self._tables.get((service, key))
                    if cached is None or len(info.columns) >= len(cached.columns):
                        self._tables[(service, key)] = info
                self._loaded_services[service] = time.monotonic()
        return {k: v for (s, k), v in self._tables.items() if s == service}

    def _table(self, service: str, entity_type: str) -> TableInfo | None:
        key = entity_type.lower()
        info = self._tables.get((service, key))
        if info is None:
            info = self._service_tables(service, refresh=True).get(key)
        return info

    def _ensure(self, service: str, entity_type: str, rows: list[EntityRow]) -> TableInfo:
        """The type's table with a column for every attribute these rows carry (DDL only when new)."""
        info = self._tables.get((service, entity_type.lower()))
        if info is not None:
            seen: set[str] = set()
            for row in rows:
                seen.update(row.attrs)
            columns = info.columns
            if all((name := column_name(a)) in columns or name in RESERVED for a in seen):
                return info
        with self._schema_lock:
            info = self._table(service, entity_type)
            create = info is None
            if info is None:
                info = TableInfo(service, entity_type)
            new: dict[str, Column] = {}
            for row in rows:
                for attr, (ngsi_type, value) in row.attrs.items():
                    name = column_name(attr)
                    if name in info.columns or name in new or name in RESERVED:
                        continue
                    kind = kind_for(ngsi_type, value)
                    if kind is not None:
                        new[name] = Column(name, attr, ngsi_type or "Text", kind)
            if create or new:
                extended = TableInfo(service, info.entity_type, {**info.columns, **new})
                self._create_or_extend(extended, list(new.values()), create)
                self._tables[(service, entity_type.lower())] = extended
                info = extended
            return info

    # -- insert --------------------------------------------------------------------------------------------
    def insert(self, service: str, rows: list[EntityRow]) -> InsertResult:
        """Write one notification's rows (one per entity) in one transaction."""
        result = InsertResult()
        by_type: dict[str, list[EntityRow]] = {}
        for row in rows:
            by_type.setdefault(row.entity_type.lower(), []).append(row)
        batches = []
        for type_rows in by_type.values():
            info = self._ensure(service, type_rows[0].entity_type, type_rows)
            batches.extend(self._prepare(info, type_rows, result))
        self._write(batches)
        result.rows = len(rows)
        return result

    def _prepare(
        self, info: TableInfo, rows: list[EntityRow], result: InsertResult
    ) -> list[tuple[str, Sequence[str], list[list[Any]]]]:
        """The insert batches of one type: one per attribute set (a precomputed row builder each).

        Notified entities of one subscription carry the same attributes in the same order, so the column
        list, each value's slot and kind are computed once per (table shape, attribute sequence).
        """
        table = self.table_sql(info.service, info.entity_type.lower())
        groups: dict[tuple[str, ...], list[EntityRow]] = {}
        for row in rows:
            key = tuple(row.attrs)
            group = groups.get(key)
            if group is None:
                groups[key] = [row]
            else:
                group.append(row)
        if len(groups) > MAX_PLANS_PER_BATCH:
            names, values = self._prepare_general(info, rows, result)
            return [(table, names, values)]
        batches: list[tuple[str, Sequence[str], list[list[Any]]]] = []
        for key, group in groups.items():
            plan = info.plans.get(key)
            if plan is None:
                plan = info.plans[key] = self._plan(info, key)
            batches.append((table, plan.names, self._build(plan, group, result)))
        return batches

    @staticmethod
    def _plan(info: TableInfo, attrs: tuple[str, ...]) -> _RowPlan:
        steps: list[tuple[int, str, str]] = []
        names = [ENTITY_ID, ENTITY_TYPE, TIME_INDEX, SERVICE_PATH, ORIGINAL]
        slots: dict[str, int] = {}
        for attr in attrs:
            name = column_name(attr)
            column = info.columns.get(name)
            if name in RESERVED:
                steps.append((_RESERVED_SLOT, "", attr))
            elif column is None:
                steps.append((_SKIP, "", attr))
            else:
                slot = slots.get(name)
                if slot is None:
                    slot = slots[name] = len(names)
                    names.append(name)
                steps.append((slot, column.kind, column.attr))
        return _RowPlan(tuple(names), tuple(steps), len(names) - 5)

    def _build(self, plan: _RowPlan, rows: list[EntityRow], result: InsertResult) -> list[list[Any]]:
        blank = [None] * plan.width
        steps = plan.steps
        time_param, to_db = self.time_param, self.to_db
        identity_time = type(self).time_param is Store.time_param
        values: list[list[Any]] = []
        for row in rows:
            line: list[Any] = [
                row.entity_id,
                row.entity_type,
                row.time_index if identity_time else time_param(row.time_index),
                row.service_path,
                None,
                *blank,
            ]
            rejected = False
            for (_, value), (slot, kind, attr) in zip(row.attrs.values(), steps, strict=True):
                if slot < 0:
                    if slot == _RESERVED_SLOT:
                        rejected = True
                        result.rejected.append(
                            Rejection(row.entity_id, attr, "reserved_name", f"{attr!r} is a reserved column name")
                        )
                    continue
                if value is None:
                    continue
                if kind == FLOAT:
                    value_type = type(value)
                    if (value_type is float or value_type is int) and isfinite(value):
                        line[slot] = float(value)  # the common case, without the general fitting
                        continue
                try:
                    line[slot] = to_db(kind, fit(kind, value))
                except Misfit as exc:
                    rejected = True
                    result.rejected.append(Rejection(row.entity_id, attr, exc.reason, str(exc)))
            if rejected:
                line[4] = self.original_param(row.original)
            values.append(line)
        return values

    def _prepare_general(
        self, info: TableInfo, rows: list[EntityRow], result: InsertResult
    ) -> tuple[Sequence[str], list[list[Any]]]:
        """The insert's columns (only those this batch carries) and one parameter row per entity."""
        positions: dict[str, int] = {}
        columns: list[Column] = []
        by_name: dict[str, int] = {}
        for row in rows:
            for attr in row.attrs:
                if attr in positions:
                    continue
                name = column_name(attr)
                column = info.columns.get(name)
                if column is None or name in RESERVED:
                    positions[attr] = -1
                    continue
                if name not in by_name:
                    by_name[name] = len(columns)
                    columns.append(column)
                positions[attr] = by_name[name]
        names = [ENTITY_ID, ENTITY_TYPE, TIME_INDEX, SERVICE_PATH, ORIGINAL, *(c.name for c in columns)]
        kinds = [c.kind for c in columns]
        width = len(columns)
        time_param, to_db = self.time_param, self.to_db
        values: list[list[Any]] = []
        for row in rows:
            line: list[Any] = [row.entity_id, row.entity_type, time_param(row.time_index), row.service_path, None]
            line += [None] * width
            rejected = False
            for attr, (_, value) in row.attrs.items():
                position = positions[attr]
                if position < 0:
                    if column_name(attr) in RESERVED:
                        rejected = True
                        result.rejected.append(
                            Rejection(row.entity_id, attr, "reserved_name", f"{attr!r} is a reserved column name")
                        )
                    continue
                if value is None:
                    continue
                kind = kinds[position]
                value_type = type(value)
                if kind == FLOAT and (value_type is float or value_type is int) and isfinite(value):
                    line[5 + position] = float(value)  # the common case, without the general fitting
                    continue
                try:
                    line[5 + position] = to_db(kind, fit(kind, value))
                except Misfit as exc:
                    rejected = True
                    result.rejected.append(Rejection(row.entity_id, columns[position].attr, exc.reason, str(exc)))
            if rejected:
                line[4] = self.original_param(row.original)
            values.append(line)
        return names, values

    def bulk_load(self, service: str, rows: Iterable[EntityRow], chunk: int = 50_000) -> int:
        """Load many rows fast (benchmarks, migrations): big transactions instead of one per notification."""
        total = 0
        batch: list[EntityRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                total += self.insert(service, batch).rows
                batch = []
        if batch:
            total += self.insert(service, batch).rows
        return total

    # -- query ---------------------------------------------------------------------------------------------
    def _tables_for(self, service: str, types: Sequence[str] | None) -> list[TableInfo]:
        if types:
            found = [self._table(service, t) for t in types]
            return [t for t in found if t is not None]
        return sorted(self._service_tables(service, refresh=True).values(), key=lambda t: t.entity_type)

    def _where(self, q: Query, *, time_only: bool = False) -> tuple[list[str], list[Any]]:
        conds: list[str] = []
        params: list[Any] = []
        ph = self.ph
        if q.entity_ids:
            conds.append(f"{ENTITY_ID} IN ({', '.join([ph] * len(q.entity_ids))})")
            params += q.entity_ids
        if q.from_ms is not None:
            conds.append(f"{TIME_INDEX} >= {ph}")
            params.append(self.time_param(q.from_ms))
        if q.to_ms is not None:
            conds.append(f"{TIME_INDEX} <= {ph}")
            params.append(self.time_param(q.to_ms))
        if time_only:
            return conds, params
        if q.id_pattern:
            conds.append(f"{ENTITY_ID} {self.regex_op} {ph}")
            params.append(q.id_pattern)
        paths = [p.rstrip("/") for p in (q.service_paths or []) if p.strip()]
        if paths and "" not in paths:
            ors = []
            for path in paths:
                ors.append(f"{SERVICE_PATH} = {ph} OR {SERVICE_PATH} LIKE {ph} ESCAPE '\\'")
                params += [path, _like_escape(path) + "/%"]
            conds.append("(" + " OR ".join(ors) + ")")
        return conds, params

    @staticmethod
    def _where_sql(conds: list[str]) -> str:
        return (" WHERE " + " AND ".join(conds)) if conds else ""

    def query(self, service: str, q: Query) -> list[Series]:
        """Raw or aggregated series of every matching entity (empty when nothing matches)."""
        tables = self._tables_for(service, q.entity_types)
        planned = []
        for info in tables:
            columns = info.resolve(q.attrs)
            if q.attrs and not columns:
                continue
            planned.append((info, columns))
        if not planned:
            return []
        if q.aggr_method:
            if q.aggr_method != "count":
                for _, columns in planned:
                    if any(c.kind not in NUMERIC_KINDS for c in columns):
                        raise AggregationNotApplicable()
            series = []
            for info, columns in planned:
                series += self._aggregate(info, columns, q)
            return self._page_aggregated(series, q)
        return self._raw(planned, q)

    def _raw(self, planned: list[tuple[TableInfo, list[Column]]], q: Query) -> list[Series]:
        take = min(q.last_n, q.limit) if q.last_n else q.limit
        order = "DESC" if q.last_n else "ASC"
        single = len(planned) == 1 and q.geo is None
        rows: list[tuple[int, str, str, TableInfo, list[Column], tuple[Any, ...]]] = []
        for info, columns in planned:
            select = [ENTITY_ID, ENTITY_TYPE, TIME_INDEX, *(self.quote(c.name) for c in columns)]
            geo_column = None
            if q.geo is not None:
                geo_column = info.columns.get("location")
                if geo_column is None:
                    continue
                select.append(self.quote("location"))
            conds, params = self._where(q)
            sql = f"SELECT {', '.join(select)} FROM {self.table_sql(info.service, info.entity_type.lower())}"
            sql += self._where_sql(conds) + f" ORDER BY {TIME_INDEX} {order}"
            if q.geo is None:
                sql += f" LIMIT {int(take) + (0 if single else int(q.offset))}"
                if single and q.offset:
                    sql += f" OFFSET {int(q.offset)}"
            for record in self._read(sql, params):
                if geo_column is not None and q.geo is not None:
                    location = self.from_db(geo_column.kind, record[-1])
                    if not geo_matches(location, q.geo):
                        continue
                    record = record[:-1]
                rows.append((self.time_value(record[2]), record[0], record[1], info, columns, record))
        if not single:
            rows.sort(key=lambda r: r[0], reverse=bool(q.last_n))
            rows = rows[q.offset : q.offset + take]
        if q.last_n:
            rows.reverse()
        grouped: dict[tuple[str, str], Series] = {}
        for ms, entity_id, entity_type, _info, columns, record in rows:
            series = grouped.get((entity_id, entity_type))
            if series is None:
                series = grouped[(entity_id, entity_type)] = Series(
                    entity_id, entity_type, [], {c.attr: [] for c in columns}
                )
            series.index.append(ms)
            for position, column in enumerate(columns, start=3):
                series.values[column.attr].append(self.from_db(column.kind, record[position]))
        return sorted(grouped.values(), key=lambda s: (s.entity_type, s.entity_id))

    def _aggregate(self, info: TableInfo, columns: list[Column], q: Query) -> list[Series]:
        """Per-entity aggregation; with a period, one index range scan per bucket.

        Neither SQLite (no hash aggregation) nor PostgreSQL (it cannot tell how many groups an expression
        makes, so it sorts every row) groups millions of rows by a time bucket quickly; scanning each bucket
        as its own ``(entity_id, time_index)`` range reads the rows once, in index order, on two connections.
        """
        if not q.aggr_period or q.geo is not None:
            return self._group_by_aggregate(info, columns, q)
        table = self.table_sql(info.service, info.entity_type.lower())
        conds, params = self._where(q)
        if q.entity_ids:
            ids = list(dict.fromkeys(q.entity_ids))
        else:
            ids = [
                r[0] for r in self._read(f"SELECT DISTINCT {ENTITY_ID} FROM {table}{self._where_sql(conds)}", params)
            ]
        if len(ids) > MAX_ENTITIES_PER_BUCKET_PLAN:
            return self._group_by_aggregate(info, columns, q)
        method = (q.aggr_method or "count").upper()
        result = []
        for entity_id in ids:
            one = replace(q, entity_ids=[entity_id])
            time_conds, time_params = self._where(one, time_only=True)
            first = f"SELECT {TIME_INDEX} FROM {table}{self._where_sql(time_conds)} ORDER BY {TIME_INDEX}"
            bounds = self._read(f"SELECT ({first} LIMIT 1), ({first} DESC LIMIT 1)", time_params * 2)[0]
            if bounds[0] is None:
                continue
            lo, hi = self.time_value(bounds[0]), self.time_value(bounds[1])
            if timeindex.bucket_count(lo, hi, q.aggr_period) * len(columns) > MAX_BUCKET_SCANS:
                result += self._group_by_aggregate(info, columns, one)
                continue
            # The date range is applied to each bucket's bounds, not as SQL conditions, so that the index is
            # ranged on the bucket and not on the whole period.
            spans = [
                (start, max(start, lo), min(end, hi + 1)) for start, end in timeindex.buckets(lo, hi, q.aggr_period)
            ]
            conds, params = self._where(replace(one, from_ms=None, to_ms=None))
            inner = " AND ".join([*conds, f"{TIME_INDEX} >= b.lo", f"{TIME_INDEX} < b.hi"])
            subs = [f"(SELECT {method}({self.quote(c.name)}) FROM {table} WHERE {inner})" for c in columns]
            sql = f"{self.spans_cte()}SELECT b.s, {', '.join(subs)} FROM b"
            parts = [spans[i::SCAN_THREADS] for i in range(SCAN_THREADS)] if len(spans) >= 256 else [spans]
            bound = params * len(columns)
            chunks = self._scan_pool.map(
                lambda part, sql=sql, bound=bound: self._read(sql, [*self.spans_params(part), *bound]), parts
            )
            rows = sorted((self.time_value(r[0]), *r[1:]) for chunk in chunks for r in chunk)
            series = Series(entity_id, info.entity_type, [], {c.attr: [] for c in columns})
            for record in rows:
                values = record[1:]
                if all(v is None or (method == "COUNT" and v == 0) for v in values):
                    continue
                series.index.append(int(record[0]))
                for column, value in zip(columns, values, strict=True):
                    series.values[column.attr].append(self.aggregate_value(method.lower(), column, value))
            if series.index:
                result.append(series)
        return result

    def _group_by_aggregate(self, info: TableInfo, columns: list[Column], q: Query) -> list[Series]:
        """One GROUP BY entity (and period bucket) pass: many entities, or buckets too many to scan one by one."""
        method = q.aggr_method or "count"
        aggs = [f"{method.upper()}({self.quote(c.name)})" for c in columns]
        conds, params = self._where(q)
        bucket = self.bucket_sql(q.aggr_period) if q.aggr_period else None
        select = [ENTITY_ID, ENTITY_TYPE] + ([f"{bucket} AS bucket"] if bucket else []) + aggs
        group = [ENTITY_ID, ENTITY_TYPE] + (["bucket"] if bucket else [])
        sql = (
            f"SELECT {', '.join(select)} FROM {self.table_sql(info.service, info.entity_type.lower())}"
            f"{self._where_sql(conds)} GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}"
        )
        grouped: dict[tuple[str, str], Series] = {}
        offset = 3 if bucket else 2
        for record in self._read(sql, params):
            key = (record[0], record[1])
            series = grouped.get(key)
            if series is None:
                series = grouped[key] = Series(key[0], key[1], [], {c.attr: [] for c in columns})
            if bucket:
                if all(v is None or (method == "count" and v == 0) for v in record[offset:]):
                    continue  # as the SQLite bucket plan: a bucket without any value is not answered
                series.index.append(self.time_value(record[2]))
            for position, column in enumerate(columns, start=offset):
                series.values[column.attr].append(self.aggregate_value(method, column, record[position]))
        return list(grouped.values())

    def aggregate_value(self, method: str, column: Column, value: Any) -> Any:
        if value is None:
            return None
        if method == "count":
            return int(value)
        if method == "avg" or column.kind == "float":
            return float(value)
        return int(value) if method == "sum" or column.kind == "integer" else value

    @staticmethod
    def _page_aggregated(series: list[Series], q: Query) -> list[Series]:
        """lastN (newest buckets, answered oldest first), offset and limit over each entity's buckets."""
        paged = []
        for s in sorted(series, key=lambda s: (s.entity_type, s.entity_id)):
            count = len(s.values[next(iter(s.values))]) if s.values else 0
            start, stop = q.offset, q.offset + q.limit
            if q.last_n:
                start, stop = max(0, count - q.last_n - q.offset), count - q.offset
            index = s.index[start:stop] if s.index else []
            values = {a: v[start:stop] for a, v in s.values.items()}
            if any(values.values()):
                paged.append(Series(s.entity_id, s.entity_type, index, values))
        return paged

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def entities(self, service: str, q: Query) -> list[EntitySummary]:
        """Every matching entity with its newest time index (``GET /v2/entities``)."""
        found = []
        for info in self._tables_for(service, q.entity_types):
            conds, params = self._where(q)
            sql = (
                f"SELECT {ENTITY_ID}, {ENTITY_TYPE}, MAX({TIME_INDEX}) FROM "
                f"{self.table_sql(info.service, info.entity_type.lower())}{self._where_sql(conds)} "
                f"GROUP BY {ENTITY_ID}, {ENTITY_TYPE}"
            )
            found += [EntitySummary(r[0], r[1], self.time_value(r[2])) for r in self._read(sql, params)]
        found.sort(key=lambda e: (e.entity_type, e.entity_id))
        return found[q.offset : q.offset + q.limit]

    def resolve_type(self, service: str, entity_id: str, q: Query) -> str | None:
        """The type of an entity id asked without ``type``; AmbiguousId when several types have it."""
        types = []
        for info in self._tables_for(service, None):
            sql = (
                f"SELECT 1 FROM {self.table_sql(info.service, info.entity_type.lower())} "
                f"WHERE {ENTITY_ID} = {self.ph} LIMIT 1"
            )
            if self._read(sql, [entity_id]):
                types.append(info.entity_type)
        if len(types) > 1:
            raise AmbiguousId(
                f"There are multiple entities with the same id {entity_id!r}: "
                f"types {', '.join(types)}; use the type parameter"
            )
        return types[0] if types else None

    # -- delete ------------------------------------------------------------------------------------------
    def delete(self, service: str, q: Query, *, drop_table: bool = False) -> int:
        """Delete the matching rows (``entity_ids`` and/or ``entity_types``, time range, service path)."""
        deleted = 0
        for info in self._tables_for(service, q.entity_types):
            table = self.table_sql(info.service, info.entity_type.lower())
            if drop_table:
                count = self._read(f"SELECT COUNT(*) FROM {table}", [])[0][0]
                with self._schema_lock:
                    self._drop_table(info)
                    self._tables.pop((service, info.entity_type.lower()), None)
                deleted += int(count)
                continue
            conds, params = self._where(q)
            deleted += self._execute_write([(f"DELETE FROM {table}{self._where_sql(conds)}", params)])
        return deleted


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
