"""SQLite store (WAL): one file, one writer connection, a reader connection per thread.

Ingest is one ``executemany`` per table in one transaction per notification. Rows are indexed on
``(entity_id, time_index)``, so ``lastN`` and one entity's time range are index range scans. Period
aggregation of one entity runs one index range scan per bucket (a correlated subquery over the bucket
list) instead of a GROUP BY, because SQLite has no hash aggregation: grouping 3 M rows by an expression
would sort them all, while the bucket scans read them once in index order.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from flexmeter.quantumleap.columns import BOOLEAN, DATETIME, FLOAT, INTEGER, JSON, TEXT
from flexmeter.quantumleap.errors import StoreError
from flexmeter.quantumleap.store.base import (
    ENTITY_ID,
    ENTITY_TYPE,
    ORIGINAL,
    SERVICE_PATH,
    TIME_INDEX,
    Column,
    Store,
    TableInfo,
)

log = logging.getLogger(__name__)
_SQL_TYPES = {
    FLOAT: "REAL",
    INTEGER: "INTEGER",
    BOOLEAN: "INTEGER",
    DATETIME: "INTEGER",
    TEXT: "TEXT",
    JSON: "TEXT",
}
_PERIOD_SQL = {
    "second": f"({TIME_INDEX} - {TIME_INDEX} % 1000)",
    "minute": f"({TIME_INDEX} - {TIME_INDEX} % 60000)",
    "hour": f"({TIME_INDEX} - {TIME_INDEX} % 3600000)",
    "day": f"({TIME_INDEX} - {TIME_INDEX} % 86400000)",
    "month": f"CAST(strftime('%s', {TIME_INDEX} / 1000, 'unixepoch', 'start of month') AS INTEGER) * 1000",
    "year": f"CAST(strftime('%s', {TIME_INDEX} / 1000, 'unixepoch', 'start of year') AS INTEGER) * 1000",
}
CHECKPOINT_SECONDS = 1.0
SEQ = "seq"
"""Third part of the primary key: rows are clustered by (entity_id, time_index), duplicates allowed."""


@lru_cache(maxsize=4096)
def _insert_sql(table: str, names: tuple[str, ...]) -> str:
    """The INSERT of one batch shape (the same text every time, so sqlite3's statement cache reuses it)."""
    columns = ", ".join('"' + n.replace('"', '""') + '"' for n in names)
    return f"INSERT INTO {table} ({columns}, {SEQ}) VALUES ({', '.join('?' * (len(names) + 1))})"


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


class _Pending:
    """One notification's batches waiting for a group commit."""

    __slots__ = ("batches", "done", "error")

    def __init__(self, batches: list[tuple[str, Sequence[str], list[list[Any]]]]) -> None:
        self.batches = batches
        self.done = False
        self.error: StoreError | None = None


class SqliteStore(Store):
    backend = "sqlite"

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.synchronous = synchronous
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._writer = self._connect()
        # Checkpoints run on a background thread, not inside the commit of whichever notification crosses
        # the WAL threshold: a notification's latency is its own transaction only.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="ts-checkpoint", daemon=True)
        self._checkpointer.start()
        self._writer.execute(
            "CREATE TABLE IF NOT EXISTS md_ets_metadata (table_name TEXT PRIMARY KEY, service TEXT NOT NULL, "
            "entity_type TEXT NOT NULL, entity_attrs TEXT NOT NULL)"
        )
        self._readers: list[sqlite3.Connection] = []
        self._seq = itertools.count(time.time_ns())
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA cache_size=-131072")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA mmap_size=1073741824")
        conn.create_function("REGEXP", 2, _regexp, deterministic=True)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _checkpoint_loop(self) -> None:
        conn = self._connect()
        try:
            while not self._stop.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed (will retry)")
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=10)
        super().close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                log.warning("final WAL checkpoint failed; the WAL is replayed on next open")
            self._writer.close()

    # -- naming and dialect -----------------------------------------------------------------------------
    def table_key(self, service: str, type_key: str) -> str:
        return f"mt{service}__et{type_key}" if service else f"et{type_key}"

    def table_sql(self, service: str, type_key: str) -> str:
        return self.quote(self.table_key(service, type_key))

    def bucket_sql(self, period: str) -> str:
        return _PERIOD_SQL[period]

    # -- metadata -------------------------------------------------------------------------------------
    def _load_service(self, service: str) -> dict[str, TableInfo]:
        found = {}
        rows = self._read("SELECT entity_type, entity_attrs FROM md_ets_metadata WHERE service = ?", [service])
        for entity_type, attrs_json in rows:
            info = TableInfo(service, entity_type)
            for name, spec in json.loads(attrs_json).items():
                if len(spec) >= 3:
                    info.columns[name] = Column(name, spec[0], spec[1], spec[2])
            found[entity_type.lower()] = info
        return found

    def _create_or_extend(self, info: TableInfo, new: list[Column], create: bool) -> None:
        table = self.table_sql(info.service, info.entity_type.lower())
        statements = []
        if create:
            columns = ", ".join(f"{self.quote(c.name)} {_SQL_TYPES[c.kind]}" for c in info.columns.values())
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {table} ({ENTITY_ID} TEXT NOT NULL, {TIME_INDEX} INTEGER NOT NULL, "
                f"{SEQ} INTEGER NOT NULL, {ENTITY_TYPE} TEXT, {SERVICE_PATH} TEXT, {self.quote(ORIGINAL)} TEXT"
                + (f", {columns}" if columns else "")
                + f", PRIMARY KEY ({ENTITY_ID}, {TIME_INDEX}, {SEQ})) WITHOUT ROWID"
            )
        else:
            existing = {r[1] for r in self._writer.execute(f"PRAGMA table_info({table})")}
            statements += [
                f"ALTER TABLE {table} ADD COLUMN {self.quote(c.name)} {_SQL_TYPES[c.kind]}"
                for c in new
                if c.name not in existing
            ]
        attrs = {k: [*v, info.columns[k].kind] if k in info.columns else v for k, v in info.entity_attrs().items()}
        with self._write_lock:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                for statement in statements:
                    self._writer.execute(statement)
                self._writer.execute(
                    "INSERT INTO md_ets_metadata (table_name, service, entity_type, entity_attrs) "
                    "VALUES (?,?,?,?) "
                    "ON CONFLICT (table_name) DO UPDATE SET "
                    "entity_attrs = json_patch(entity_attrs, excluded.entity_attrs)",
                    [
                        self.table_key(info.service, info.entity_type.lower()),
                        info.service,
                        info.entity_type,
                        json.dumps(attrs),
                    ],
                )
                self._writer.execute("COMMIT")
            except sqlite3.Error as exc:
                self._writer.execute("ROLLBACK")
                raise StoreError(f"schema change on {table} failed: {exc}") from exc

    def _drop_table(self, info: TableInfo) -> None:
        key = self.table_key(info.service, info.entity_type.lower())
        self._execute_write(
            [
                (f"DROP TABLE IF EXISTS {self.quote(key)}", []),
                ("DELETE FROM md_ets_metadata WHERE table_name = ?", [key]),
            ]
        )

    # -- io ---------------------------------------------------------------------------------------------
    def _write(self, batches: list[tuple[str, Sequence[str], list[list[Any]]]]) -> None:
        """Group commit: notifications that arrive while another commits are committed together.

        Each notification is its own SAVEPOINT inside the group's transaction (when the group has more than
        one), so one that fails is rolled back alone; the caller returns only after the COMMIT that
        contains its rows.
        """
        slot = _Pending(batches)
        with self._pending_lock:
            self._pending.append(slot)
        with self._write_lock:
            if not slot.done:
                with self._pending_lock:
                    group, self._pending = self._pending, []
                self._commit_group(group)
        if slot.error is not None:
            raise slot.error

    def _insert(self, slot: _Pending) -> None:
        writer, seq = self._writer, self._seq
        for table, names, rows in slot.batches:
            for row in rows:
                row.append(next(seq))
            writer.executemany(_insert_sql(table, tuple(names)), rows)

    def _commit_group(self, group: list[_Pending]) -> None:
        writer = self._writer
        alone = len(group) == 1
        try:
            writer.execute("BEGIN")
            for slot in group:
                if alone:
                    try:
                        self._insert(slot)
                    except sqlite3.Error as exc:
                        slot.error = StoreError(f"insert failed, nothing written: {exc}")
                        writer.execute("ROLLBACK")
                        return
                    continue
                writer.execute("SAVEPOINT notification")
                try:
                    self._insert(slot)
                except sqlite3.Error as exc:
                    writer.execute("ROLLBACK TO notification")
                    slot.error = StoreError(f"insert failed, nothing written: {exc}")
                writer.execute("RELEASE notification")
            writer.execute("COMMIT")
        except sqlite3.Error as exc:
            if writer.in_transaction:
                writer.execute("ROLLBACK")
            for slot in group:
                slot.error = slot.error or StoreError(f"commit failed, nothing written: {exc}")
        finally:
            for slot in group:
                slot.done = True

    def _execute_write(self, statements: list[tuple[str, Sequence[Any]]]) -> int:
        count = 0
        with self._write_lock:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    count += max(self._writer.execute(sql, params).rowcount, 0)
                self._writer.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                raise StoreError(f"write failed: {exc}") from exc
        return count

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    # -- period aggregation: bucket list as a CTE ----------------------------------------------------------
    def spans_cte(self) -> str:
        return "WITH b(s, lo, hi) AS (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)) "

    def spans_params(self, spans: list[tuple[int, int, int]]) -> list[Any]:
        return [json.dumps(spans)]
