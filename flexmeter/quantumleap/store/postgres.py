"""PostgreSQL store in QuantumLeap's own layout, so a real QuantumLeap can read (and write) the same data.

Schema ``mt<service>``, table ``et<type>`` with ``entity_id``, ``entity_type``, ``time_index``
(timestamptz), ``fiware_servicepath``, ``__original_ngsi_entity__``, ``instanceid`` and one column per
attribute; ``md_ets_metadata`` (``table_name``, ``entity_attrs``) describes the columns as QuantumLeap
does. Hypertables when the TimescaleDB extension is installed, plain indexed tables otherwise.
Connections come from a psycopg_pool pool; each notification is one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from flexmeter.quantumleap.columns import BOOLEAN, DATETIME, FLOAT, INTEGER, JSON, TEXT, kind_for
from flexmeter.quantumleap.errors import StoreError
from flexmeter.quantumleap.model import EntityRow
from flexmeter.quantumleap.store.base import (
    ENTITY_ID,
    ENTITY_TYPE,
    INSTANCE_ID,
    ORIGINAL,
    RESERVED,
    SERVICE_PATH,
    TENANT_PREFIX,
    TIME_INDEX,
    TYPE_PREFIX,
    Column,
    Store,
    TableInfo,
)
from flexmeter.quantumleap.timeindex import EPOCH

log = logging.getLogger(__name__)
_SQL_TYPES = {
    FLOAT: "double precision",
    INTEGER: "bigint",
    BOOLEAN: "boolean",
    DATETIME: "timestamp with time zone",
    TEXT: "text",
    JSON: "jsonb",
}
_KIND_BY_PG_TYPE = {
    "double precision": FLOAT,
    "real": FLOAT,
    "numeric": FLOAT,
    "bigint": INTEGER,
    "integer": INTEGER,
    "smallint": INTEGER,
    "boolean": BOOLEAN,
    "timestamp with time zone": DATETIME,
    "timestamp without time zone": DATETIME,
    "text": TEXT,
    "character varying": TEXT,
    "jsonb": JSON,
    "json": JSON,
}


COPY_MIN_ROWS = 10
"""A notification with fewer rows (of one type) is one multi-row INSERT in autocommit: one round trip;
larger ones go through COPY inside a transaction."""


def _to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=EPOCH.tzinfo)


def _to_ms(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class PostgresStore(Store):
    backend = "postgres"
    ph = "%s"
    regex_op = "~"

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 12) -> None:
        super().__init__()
        self.dsn = dsn
        self.pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            open=True,
            kwargs={"autocommit": True, "options": "-c jit=off"},
            name="flexmeter-timeseries",
        )
        self.pool.wait(timeout=30)
        with self.pool.connection() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS md_ets_metadata (table_name text PRIMARY KEY, entity_attrs jsonb)")
            self.timescale = (
                conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None
            )

    def close(self) -> None:
        super().close()
        self.pool.close()

    def spans_cte(self) -> str:
        return "WITH b(s, lo, hi) AS (SELECT * FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[])) "

    def spans_params(self, spans: list[tuple[int, int, int]]) -> list[Any]:
        return [[_to_datetime(span[i]) for span in spans] for i in range(3)]

    # -- naming and dialect -----------------------------------------------------------------------------
    @staticmethod
    def schema(service: str) -> str | None:
        return f"{TENANT_PREFIX}{service}" if service else None

    def table_sql(self, service: str, type_key: str) -> str:
        table = self.quote(f"{TYPE_PREFIX}{type_key}")
        return f"{self.quote(TENANT_PREFIX + service)}.{table}" if service else table

    def time_param(self, ms: int) -> Any:
        return _to_datetime(ms)

    def time_value(self, value: Any) -> int:
        return _to_ms(value) if isinstance(value, datetime) else int(value)

    def to_db(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == JSON:
            return Jsonb(value)
        if kind == DATETIME:
            return _to_datetime(value)
        return value

    def from_db(self, kind: str, value: Any) -> Any:
        if value is not None and kind == JSON and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        if kind == BOOLEAN:
            return value
        return super().from_db(kind, value) if kind != JSON else value

    def original_param(self, entity: dict[str, Any]) -> Any:
        return Jsonb(entity)

    def bucket_sql(self, period: str) -> str:
        return f"date_trunc('{period}', {TIME_INDEX}, 'UTC')"

    # -- metadata ---------------------------------------------------------------------------------------
    def _load_service(self, service: str) -> dict[str, TableInfo]:
        schema = self.schema(service)
        prefix = f'"{schema}".' if schema else '"'
        found: dict[str, TableInfo] = {}
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT table_name, entity_attrs FROM md_ets_metadata WHERE table_name LIKE %s",
                [prefix.replace("_", "\\_") + "%"],
            ).fetchall()
            types = conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = %s",
                [schema or "public"],
            ).fetchall()
            kinds: dict[tuple[str, str], str] = {(t, c): d for t, c, d in types}
            for table_name, attrs in rows:
                bare = table_name[len(prefix) :] if schema else table_name
                bare = bare.strip('"')
                if not bare.startswith(TYPE_PREFIX) or (bare, ENTITY_ID) not in kinds:
                    continue
                type_key = bare[len(TYPE_PREFIX) :]
                sample = conn.execute(
                    f"SELECT {ENTITY_TYPE} FROM {self.table_sql(service, type_key)} LIMIT 1"
                ).fetchone()
                info = TableInfo(service, sample[0] if sample else type_key)
                for name, spec in (attrs or {}).items():
                    if name in RESERVED or name == TIME_INDEX or (bare, name) not in kinds:
                        continue
                    attr, ngsi_type = spec[0], spec[1]
                    kind = _KIND_BY_PG_TYPE.get(kinds[(bare, name)]) or kind_for(ngsi_type, None) or TEXT
                    info.columns[name] = Column(name, attr, ngsi_type or "Text", kind)
                found[type_key] = info
        return found

    def _create_or_extend(self, info: TableInfo, new: list[Column], create: bool) -> None:
        service, type_key = info.service, info.entity_type.lower()
        table = self.table_sql(service, type_key)
        schema = self.schema(service)
        statements = []
        if create:
            if schema:
                statements.append(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")
            columns = "".join(f", {self.quote(c.name)} {_SQL_TYPES[c.kind]}" for c in info.columns.values())
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {table} ({ENTITY_ID} text, {ENTITY_TYPE} text, "
                f"{TIME_INDEX} timestamp with time zone NOT NULL, {SERVICE_PATH} text, "
                f"{self.quote(ORIGINAL)} jsonb, "
                f"{INSTANCE_ID} text{columns})"
            )
            if self.timescale:
                statements.append(
                    f"SELECT create_hypertable('{table}', '{TIME_INDEX}', if_not_exists => true, migrate_data => true)"
                )
            index = self.quote(f"ix_{TYPE_PREFIX}{type_key}_eid_ti"[:63])
            statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({ENTITY_ID}, {TIME_INDEX})")
        statements += [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {self.quote(c.name)} {_SQL_TYPES[c.kind]}" for c in new
        ]
        for attempt in range(3):
            try:
                with self.pool.connection() as conn, conn.transaction():
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO md_ets_metadata (table_name, entity_attrs) VALUES (%s, %s) "
                        "ON CONFLICT (table_name) DO UPDATE SET "
                        "entity_attrs = md_ets_metadata.entity_attrs || excluded.entity_attrs",
                        [table, Jsonb(info.entity_attrs())],
                    )
                return
            except (
                psycopg.errors.UniqueViolation,
                psycopg.errors.DuplicateObject,
                psycopg.errors.DuplicateTable,
            ) as exc:
                if attempt == 2:
                    raise StoreError(f"schema change on {table} failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StoreError(f"schema change on {table} failed: {exc}") from exc

    def _drop_table(self, info: TableInfo) -> None:
        table = self.table_sql(info.service, info.entity_type.lower())
        self._execute_write(
            [
                (f"DROP TABLE IF EXISTS {table}", []),
                ("DELETE FROM md_ets_metadata WHERE table_name = %s", [table]),
            ]
        )

    # -- io ---------------------------------------------------------------------------------------------
    def _write(self, batches: list[tuple[str, Sequence[str], list[list[Any]]]]) -> None:
        try:
            if len(batches) == 1 and len(batches[0][2]) < COPY_MIN_ROWS:
                # One multi-row INSERT in autocommit is one implicit transaction: atomic, one round trip.
                table, names, rows = batches[0]
                row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
                sql = (
                    f"INSERT INTO {table} ({', '.join(self.quote(n) for n in names)}) "
                    f"VALUES {', '.join([row_sql] * len(rows))}"
                )
                with self.pool.connection() as conn:
                    conn.execute(sql, [value for row in rows for value in row])
                return
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                for table, names, rows in batches:
                    columns = ", ".join(self.quote(n) for n in names)
                    if len(rows) >= COPY_MIN_ROWS:  # COPY costs half the CPU of INSERT per row
                        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                    else:
                        cur.executemany(
                            f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(names))})", rows
                        )
        except psycopg.errors.UndefinedColumn as exc:
            self._loaded_services.clear()  # another process changed the table: reload metadata next time
            raise StoreError(f"insert failed, nothing written: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"insert failed, nothing written: {exc}") from exc

    def _execute_write(self, statements: list[tuple[str, Sequence[Any]]]) -> int:
        count = 0
        try:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                for sql, params in statements:
                    cur.execute(sql, params)
                    count += max(cur.rowcount, 0)
        except psycopg.Error as exc:
            raise StoreError(f"write failed: {exc}") from exc
        return count

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self.pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def bulk_load(self, service: str, rows: Iterable[EntityRow], chunk: int = 100_000) -> int:
        """COPY in chunks: for benchmarks and migrations, not the notification path."""
        total = 0
        batch: list[EntityRow] = []
        touched: set[str] = set()

        def flush() -> int:
            by_type: dict[str, list[EntityRow]] = {}
            for row in batch:
                by_type.setdefault(row.entity_type.lower(), []).append(row)
            prepared = []
            from flexmeter.quantumleap.model import InsertResult

            for type_rows in by_type.values():
                info = self._ensure(service, type_rows[0].entity_type, type_rows)
                prepared.extend(self._prepare(info, type_rows, InsertResult()))
            try:
                with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    for table, names, values in prepared:
                        columns = ", ".join(self.quote(n) for n in names)
                        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                            for value in values:
                                copy.write_row(value)
            except psycopg.Error as exc:
                raise StoreError(f"bulk load failed: {exc}") from exc
            touched.update(table for table, _, _ in prepared)
            return len(batch)

        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                total += flush()
                batch = []
        if batch:
            total += flush()
        with self.pool.connection() as conn:  # fresh statistics and visibility map, as autovacuum would give
            for table in sorted(touched):
                conn.execute(f"VACUUM ANALYZE {table}")
        return total

    def drop_tenant(self, service: str) -> None:
        """Drop a tenant's schema and metadata (tests, decommissioning)."""
        schema = self.schema(service)
        if not schema:
            return
        self._execute_write(
            [
                (f"DROP SCHEMA IF EXISTS {self.quote(schema)} CASCADE", []),
                (
                    "DELETE FROM md_ets_metadata WHERE table_name LIKE %s",
                    [f'"{schema}".%'.replace("_", "\\_")],
                ),
            ]
        )
        with self._schema_lock:
            for key in [k for k in self._tables if k[0] == service]:
                self._tables.pop(key)
            self._loaded_services.pop(service, None)
