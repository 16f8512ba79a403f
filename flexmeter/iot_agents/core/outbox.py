"""The durable outbox (mapped entity updates waiting for the broker) and the dead-letter store, in SQLite.

A transport acknowledges a message only after the pipeline has committed its updates here, so a reading
is always in the broker, in this outbox or in the dead letters (DESIGN.md §5). WAL with
``synchronous=NORMAL`` survives a killed process (kill -9); ``durable=True`` (FULL) also survives power loss.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

try:  # a C JSON codec for the per-message inbox parameters; the stdlib when it is not installed
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode() if orjson is not None else json.dumps(value)


def _loads(text: str) -> Any:
    return orjson.loads(text) if orjson is not None else json.loads(text)


class OutboxRow(NamedTuple):
    id: int
    service: str
    service_path: str
    entity: str
    """The entity as NGSI-v2 normalized JSON text (ready to splice into a batch body)."""
    family: str
    received: float


@dataclass(frozen=True)
class DeadLetter:
    id: int
    at: float
    family: str
    reason: str
    error: str
    raw: bytes
    context: dict[str, Any]
    service: str | None = None
    """The tenant the message was addressed to (its apikey's service group); None when unknown."""
    service_path: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``raw`` as text when it is text (JSON, hex lines, readouts), else ``{"hex": ...}``: a binary frame
        that happens to be valid UTF-8 (``0f 00 01 ...``) is still shown as hex."""
        try:
            raw: Any = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            raw = None
        if raw is None or not all(c.isprintable() or c in "\r\n\t" for c in raw):
            raw = {"hex": self.raw.hex()}
        return {"id": self.id, "at": self.at, "family": self.family, "error": self.error, "reason": self.reason,
                "raw": raw, "context": self.context}


class NewRow(NamedTuple):
    service: str
    service_path: str
    entity: str
    family: str
    received: float


class InboxRow(NamedTuple):
    """A raw message as a transport received it, persisted before the transport acknowledges it."""

    family: str
    transport: str
    pattern: str
    params: dict[str, str]
    payload: bytes
    content_type: str | None
    received: float


@dataclass(frozen=True)
class NewDeadLetter:
    family: str
    error: str
    reason: str
    raw: bytes
    context: dict[str, Any]
    service: str | None = None
    """Tenant (Fiware-Service) of the apikey the message came with; None: no group has it (unattributed:
    listed to no tenant, see ``/iot/deadletters``)."""
    service_path: str | None = None

    def for_tenant(self, tenant: tuple[str, str] | None) -> NewDeadLetter:
        if tenant is None or self.service is not None:
            return self
        return NewDeadLetter(self.family, self.error, self.reason, self.raw, self.context, *tenant)


class OutboxParticipant(Protocol):
    """State that must be exactly as durable as the readings it was derived from (the DLMS invocation
    counters): written in the same SQLite transaction as the outbox rows and dead letters of the thread
    that commits them, so a crash keeps both or neither. The pipeline thread that decodes a message is the
    one that commits it, so a participant keeps what it owes per thread."""

    def attach(self, db: sqlite3.Connection) -> None:
        """Once, from :meth:`Outbox.join`: create its tables in the outbox file and load its state."""

    def write(self, db: sqlite3.Connection) -> None:
        """Inside every write transaction of the calling thread, before its COMMIT."""

    def committed(self) -> None:
        """After that COMMIT, in the same thread."""

    def rolled_back(self) -> None:
        """After a ROLLBACK of that transaction (the caller retries or re-decodes), in the same thread."""


class Outbox:
    """One SQLite file; a connection per thread (the pipeline writes, the forwarder reads and deletes)."""

    def __init__(self, path: Path | str, *, durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._sync = "FULL" if durable else "NORMAL"
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._participants: tuple[OutboxParticipant, ...] = ()
        db = self._conn()
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, service_path TEXT NOT NULL,
                entity TEXT NOT NULL, family TEXT NOT NULL, received REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS inbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT, family TEXT NOT NULL, transport TEXT NOT NULL,
                pattern TEXT NOT NULL, params TEXT NOT NULL, payload BLOB NOT NULL, content_type TEXT,
                received REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, family TEXT NOT NULL, error TEXT NOT NULL,
                reason TEXT NOT NULL, raw BLOB NOT NULL, context TEXT NOT NULL);
            """
        )
        columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
        if "service" not in columns:  # an outbox.db of an earlier version: its letters stay unattributed
            db.execute("ALTER TABLE dead_letters ADD COLUMN service TEXT")
            db.execute("ALTER TABLE dead_letters ADD COLUMN service_path TEXT")
        db.execute("CREATE INDEX IF NOT EXISTS dead_letters_tenant ON dead_letters (service, service_path, id)")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=60, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync}")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    def join(self, participant: OutboxParticipant) -> None:
        """Write ``participant``'s state in every ``put``/``move_processed`` transaction from now on."""
        participant.attach(self._conn())
        with self._lock:
            self._participants = (*self._participants, participant)

    def put(self, rows: Sequence[NewRow], dead: Sequence[NewDeadLetter] = ()) -> None:
        """One transaction for a whole pipeline batch: committed before any of its messages is acked."""
        if not rows and not dead and not self._participants:
            return
        self._write(rows, dead, ())

    def _write(self, rows: Sequence[NewRow], dead: Sequence[NewDeadLetter], inbox_ids: Sequence[int]) -> None:
        """Rows, dead letters, processed inbox messages and the participants' state: one transaction."""
        participants = self._participants
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert(db, rows, dead)
            if inbox_ids:
                db.execute("DELETE FROM inbox WHERE id BETWEEN ? AND ?", (min(inbox_ids), max(inbox_ids)))
            for participant in participants:
                participant.write(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            for participant in participants:
                participant.rolled_back()
            raise
        for participant in participants:
            participant.committed()

    @staticmethod
    def _insert(db: sqlite3.Connection, rows: Sequence[NewRow], dead: Sequence[NewDeadLetter]) -> None:
        if rows:
            db.executemany("INSERT INTO outbox (service, service_path, entity, family, received) VALUES "
                           "(?, ?, ?, ?, ?)",
                           [(r.service, r.service_path, r.entity, r.family, r.received) for r in rows])
        if dead:
            now = time.time()
            db.executemany("INSERT INTO dead_letters (at, family, error, reason, raw, context, service, service_path) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [(now, d.family, d.error, d.reason, d.raw, json.dumps(d.context), d.service,
                             d.service_path) for d in dead])

    # -- inbox: raw messages persisted before the ack, decoded afterwards ----------------------------------
    def put_inbox(self, items: Sequence[InboxRow]) -> None:
        if not items:
            return
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO inbox (family, transport, pattern, params, payload, content_type, received) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(i.family, i.transport, i.pattern, _dumps(i.params), i.payload, i.content_type,
                             i.received) for i in items])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def take_inbox(self, limit: int) -> list[tuple[int, InboxRow]]:
        rows = self._conn().execute(
            "SELECT id, family, transport, pattern, params, payload, content_type, received FROM inbox "
            "ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(r[0], InboxRow(r[1], r[2], r[3], _loads(r[4]), r[5], r[6], r[7])) for r in rows]

    def inbox_depth(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM inbox").fetchone()[0])

    def move_processed(self, inbox_ids: Sequence[int], rows: Sequence[NewRow],
                       dead: Sequence[NewDeadLetter]) -> None:
        """Inbox messages -> their outbox updates and dead letters, atomically."""
        self._write(rows, dead, inbox_ids)

    def peek(self, limit: int, after: int = 0) -> list[OutboxRow]:
        """The oldest ``limit`` rows with an id above ``after`` (rows already in flight are not read again)."""
        rows = self._conn().execute(
            "SELECT id, service, service_path, entity, family, received FROM outbox WHERE id > ? ORDER BY id "
            "LIMIT ?", (after, limit)).fetchall()
        return [OutboxRow._make(row) for row in rows]

    def delete(self, ids: list[int]) -> None:
        """One ``BETWEEN`` per run of consecutive ids (the forwarder sends the oldest rows, mostly in order)."""
        if not ids:
            return
        runs: list[tuple[int, int]] = []
        ordered = sorted(ids)
        start = end = ordered[0]
        for i in ordered[1:]:
            if i == end + 1:
                end = i
            elif i != end:
                runs.append((start, end))
                start = end = i
        runs.append((start, end))
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("DELETE FROM outbox WHERE id BETWEEN ? AND ?", runs)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def bump_attempts(self, ids: list[int]) -> None:
        self._conn().executemany("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in ids])

    def to_dead_letter(self, row: OutboxRow, error: str, reason: str) -> None:
        """Move a row the broker rejects for good (4xx) to the dead letters, with the broker's reason."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO dead_letters (at, family, error, reason, raw, context, service, service_path) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (time.time(), row.family, error, reason, row.entity.encode(),
                        json.dumps({"service": row.service, "service_path": row.service_path, "stage": "forward"}),
                        row.service, row.service_path))
            db.execute("DELETE FROM outbox WHERE id = ?", (row.id,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def depth(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def dead_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        """Every tenant's (and the unattributed ones): for the agent itself, never for an API caller."""
        rows = self._conn().execute(
            "SELECT id, at, family, reason, error, raw, context, service, service_path FROM dead_letters "
            "ORDER BY id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        return [DeadLetter(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), json.loads(r[6]), r[7], r[8]) for r in rows]

    def tenant_dead_letters(self, service: str, service_path: str | None, limit: int = 100,
                            offset: int = 0) -> tuple[int, list[DeadLetter]]:
        """One tenant's dead letters and their count; ``service_path`` None = every path of the service."""
        where, args = "service = ?", [service]
        if service_path is not None:
            where += " AND service_path = ?"
            args.append(service_path)
        db = self._conn()
        count = int(db.execute(f"SELECT COUNT(*) FROM dead_letters WHERE {where}", args).fetchone()[0])
        rows = db.execute(
            "SELECT id, at, family, reason, error, raw, context, service, service_path FROM dead_letters "
            f"WHERE {where} ORDER BY id LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return count, [DeadLetter(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), json.loads(r[6]), r[7], r[8])
                       for r in rows]

    def unattributed_count(self) -> int:
        """Dead letters no tenant owns (an apikey no service group has)."""
        return int(self._conn().execute("SELECT COUNT(*) FROM dead_letters WHERE service IS NULL").fetchone()[0])


def read_dead_letters(path: Path | str, *, unattributed: bool = False, service: str | None = None,
                      service_path: str | None = None, limit: int | None = 100,
                      offset: int = 0) -> tuple[int, list[DeadLetter]]:
    """Dead letters of an ``outbox.db`` read-only (the operator's ``flexmeter deadletters``; the agent may be
    running or not): every tenant's, the unattributed ones (``service IS NULL``: an apikey no group has),
    or one tenant's; with their count. ``limit`` None = all. Raises ``FileNotFoundError`` without the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no outbox at {path}")
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=30)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
        conditions: list[str] = []
        args: list[str] = []
        if "service" not in columns:  # an earlier version's file: every letter is unattributed
            if service is not None or service_path is not None:
                return 0, []
            tenant = "NULL, NULL"
        else:
            tenant = "service, service_path"
            if unattributed:
                conditions.append("service IS NULL")
            if service is not None:
                conditions.append("service = ?")
                args.append(service)
            if service_path is not None:
                conditions.append("service_path = ?")
                args.append(service_path)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        count = int(db.execute(f"SELECT COUNT(*) FROM dead_letters{where}", args).fetchone()[0])
        rows = db.execute(f"SELECT id, at, family, reason, error, raw, context, {tenant} FROM dead_letters{where} "
                          "ORDER BY id LIMIT ? OFFSET ?", (*args, -1 if limit is None else limit, offset)).fetchall()
    finally:
        db.close()
    return count, [DeadLetter(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), json.loads(r[6]), r[7], r[8]) for r in rows]
