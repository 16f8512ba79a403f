"""The service's state in one SQLite file (WAL): readings keyed for idempotence, results, alarms, audit.

Readings are keyed by (tenant, entity, quantity, observation time), so a notification delivered twice
inserts nothing the second time and marks no work. Work to do ("dirty" periods) is written in the same
transaction as the readings that caused it, so a restart resumes exactly where the process stopped.
One connection, one lock: the GIL serialises Python anyway, and SQLite likes one writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (s INTEGER PRIMARY KEY, tk TEXT, e TEXT, UNIQUE (tk, e));
CREATE TABLE IF NOT EXISTS readings (s INTEGER, q TEXT, t REAL, v REAL, PRIMARY KEY (s, q, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meters (tk TEXT, e TEXT, type TEXT, vector TEXT, first_t REAL, last_t REAL,
    last_wall REAL, n INTEGER, PRIMARY KEY (tk, e)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_counts (tk TEXT, e TEXT, day TEXT, n INTEGER, PRIMARY KEY (tk, e, day))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (tk TEXT, e TEXT, rel TEXT, target TEXT, PRIMARY KEY (tk, e, rel, target))
    WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_target ON links (tk, target, rel);
CREATE TABLE IF NOT EXISTS props (tk TEXT, e TEXT, name TEXT, value TEXT, PRIMARY KEY (tk, e, name))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dirty (tk TEXT, kind TEXT, key TEXT, start REAL, PRIMARY KEY (tk, kind, key, start))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (tk TEXT, e TEXT, res TEXT, start REAL, end REAL, vector TEXT,
    consumption REAL, production REAL, estimated INTEGER, completeness REAL, complete INTEGER,
    PRIMARY KEY (tk, e, res, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS balances (tk TEXT, area TEXT, start REAL, end REAL, body TEXT,
    PRIMARY KEY (tk, area, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outages (tk TEXT, area TEXT, start REAL, end REAL, body TEXT,
    PRIMARY KEY (tk, area, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meter_outages (tk TEXT, e TEXT, phase TEXT, start REAL, end REAL, area TEXT,
    PRIMARY KEY (tk, e, phase, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS meter_outages_area ON meter_outages (tk, area);
CREATE TABLE IF NOT EXISTS alarms (tk TEXT, id TEXT, kind TEXT, e TEXT, start REAL, end REAL, body TEXT,
    PRIMARY KEY (tk, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heat_intervals (tk TEXT, e TEXT, start REAL, end REAL, dt REAL,
    PRIMARY KEY (tk, e, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heat_daily (tk TEXT, e TEXT, day TEXT, peak REAL, contracted REAL,
    PRIMARY KEY (tk, e, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS water_nights (tk TEXT, e TEXT, night TEXT, min_lph REAL,
    PRIMARY KEY (tk, e, night)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS breaker (id INTEGER PRIMARY KEY AUTOINCREMENT, tk TEXT, meter TEXT, entity_type TEXT,
    action TEXT, requested_at REAL, requested_by TEXT, status TEXT, info TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS outbox (tk TEXT, eid TEXT, body TEXT, PRIMARY KEY (tk, eid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS silence_seen (tk TEXT, e TEXT, t REAL, PRIMARY KEY (tk, e)) WITHOUT ROWID;
"""


def scope_of(service_path: str) -> str:
    """The analytics scope of a service path: its first level (``/turin/electricity`` → ``/turin``).

    A pilot spreads its entities over sub-paths (meters in ``/turin/electricity`` and ``/turin/grid``, the
    topology in ``/turin/assets``) and subscribes with ``/turin/#``; the balance of a substation needs all of
    them, so readings, topology and results are kept per scope. A notification naming several paths
    (comma-separated) is scoped by the first."""
    first = (service_path or "/").split(",")[0].strip()
    parts = [p for p in first.split("/") if p and p != "#"]
    return "/" + parts[0] if parts else "/"


def tenant_key(service: str, service_path: str) -> str:
    """The tenant of the analytics: ``Fiware-Service`` and the scope of the service path."""
    return f"{service}|{scope_of(service_path)}"


def split_tenant(tk: str) -> tuple[str, str]:
    service, _, path = tk.partition("|")
    return service, path or "/"


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-131072")
        self.db.execute("PRAGMA wal_autocheckpoint=20000")  # fewer checkpoints: 1.5x the write rate
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        self._sids: dict[tuple[str, str], int] = {
            (tk, e): int(s) for s, tk, e in self.db.execute("SELECT s, tk, e FROM series").fetchall()}

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.db.execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Iterable[Any] = ()) -> tuple[Any, ...] | None:
        with self.lock:
            row: tuple[Any, ...] | None = self.db.execute(sql, tuple(params)).fetchone()
            return row

    # -- readings ---------------------------------------------------------------------------------------
    def series_id(self, tk: str, e: str) -> int:
        """The series id of an entity, created on first use."""
        found = self.sid(tk, e, create=True)
        assert found is not None
        return found

    def sid(self, tk: str, e: str, create: bool = False) -> int | None:
        """The integer id of an entity's series (small keys make the readings table 4x faster to write)."""
        found = self._sids.get((tk, e))
        if found is None and create:
            with self.lock:
                self.db.execute("INSERT OR IGNORE INTO series (tk, e) VALUES (?, ?)", (tk, e))
                row = self.db.execute("SELECT s FROM series WHERE tk=? AND e=?", (tk, e)).fetchone()
            found = int(row[0])
            self._sids[(tk, e)] = found
        return found

    def points(self, tk: str, e: str, q: str, t0: float, t1: float) -> list[tuple[float, float]]:
        """Readings of ``q`` in [t0, t1] plus the last one before t0 and the first one after t1."""
        s = self.sid(tk, e)
        if s is None:
            return []
        with self.lock:
            before = self.db.execute("SELECT t, v FROM readings WHERE s=? AND q=? AND t<? "
                                     "ORDER BY t DESC LIMIT 1", (s, q, t0)).fetchall()
            inside = self.db.execute("SELECT t, v FROM readings WHERE s=? AND q=? AND t>=? AND t<=? "
                                     "ORDER BY t", (s, q, t0, t1)).fetchall()
            after = self.db.execute("SELECT t, v FROM readings WHERE s=? AND q=? AND t>? "
                                    "ORDER BY t LIMIT 1", (s, q, t1)).fetchall()
        return [(float(t), float(v)) for t, v in (*before, *inside, *after)]

    def series(self, tk: str, e: str, q: str, t0: float, t1: float) -> list[tuple[float, float]]:
        """Readings of ``q`` in [t0, t1) only."""
        s = self.sid(tk, e)
        if s is None:
            return []
        rows = self.query("SELECT t, v FROM readings WHERE s=? AND q=? AND t>=? AND t<? ORDER BY t", (s, q, t0, t1))
        return [(float(t), float(v)) for t, v in rows]

    def neighbours(self, tk: str, e: str, q: str, t: float) -> tuple[float | None, float | None]:
        s = self.sid(tk, e)
        with self.lock:
            prev = self.db.execute("SELECT max(t) FROM readings WHERE s=? AND q=? AND t<?", (s, q, t)).fetchone()[0]
            nxt = self.db.execute("SELECT min(t) FROM readings WHERE s=? AND q=? AND t>?", (s, q, t)).fetchone()[0]
        return prev, nxt

    # -- topology ---------------------------------------------------------------------------------------
    def targets(self, tk: str, e: str, rel: str) -> list[str]:
        return [r[0] for r in self.query("SELECT target FROM links WHERE tk=? AND e=? AND rel=?", (tk, e, rel))]

    def sources(self, tk: str, target: str, rel: str) -> list[str]:
        return [r[0] for r in self.query("SELECT e FROM links WHERE tk=? AND target=? AND rel=?", (tk, target, rel))]

    def prop(self, tk: str, e: str, name: str) -> Any:
        row = self.one("SELECT value FROM props WHERE tk=? AND e=? AND name=?", (tk, e, name))
        return json.loads(row[0]) if row else None

    # -- outbox -----------------------------------------------------------------------------------------
    def enqueue(self, conn: sqlite3.Connection, tk: str, entities: Iterable[dict[str, Any]]) -> int:
        rows = [(tk, entity["id"], json.dumps(entity, separators=(",", ":"))) for entity in entities]
        conn.executemany("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?)", rows)
        return len(rows)
