"""Subscriptions persisted in each tenant's SQLite file, in their own table and over their own connection.

The definition is written (and committed) before the API answers; the delivery state (counters, last
success/failure) is written by the engine's flusher about once a second, so a notification never waits
for a disk write. After ``kill -9`` every subscription is back, with its state at most a second old.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from flexmeter.contextbroker.subscriptions.model import DeliveryState, Subscription
from flexmeter.contextbroker.tenancy import list_tenants, tenant_db_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flexmeter_subscriptions (
    id TEXT PRIMARY KEY,
    service_path TEXT NOT NULL,
    created REAL NOT NULL,
    definition TEXT NOT NULL,
    state TEXT NOT NULL
)
"""


class _TenantDb:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.execute(_SCHEMA)
        self.lock = threading.Lock()


class SubscriptionStore:
    """One connection per tenant database, opened lazily, all under ``db_base`` (see tenancy)."""

    def __init__(self, db_base: Path) -> None:
        self.db_base = Path(db_base)
        self._dbs: dict[str, _TenantDb] = {}
        self._lock = threading.Lock()

    def _db(self, service: str) -> _TenantDb:
        with self._lock:
            db = self._dbs.get(service)
            if db is None:
                db = self._dbs[service] = _TenantDb(tenant_db_path(self.db_base, service))
            return db

    def load_all(self) -> list[Subscription]:
        """Every tenant's subscriptions, in creation order (used at start)."""
        out: list[Subscription] = []
        for service in list_tenants(self.db_base):
            db = self._db(service)
            with db.lock:
                rows = db.conn.execute(
                    "SELECT id, service_path, created, definition, state FROM flexmeter_subscriptions "
                    "ORDER BY created, id").fetchall()
            for sub_id, path, created, definition, state in rows:
                out.append(Subscription(id=sub_id, service=service, service_path=path,
                                        definition=json.loads(definition),
                                        state=DeliveryState.from_doc(json.loads(state)), created=created))
        return out

    def insert(self, sub: Subscription) -> None:
        db = self._db(sub.service)
        with db.lock:
            db.conn.execute(
                "INSERT INTO flexmeter_subscriptions (id, service_path, created, definition, state) "
                "VALUES (?, ?, ?, ?, ?)",
                (sub.id, sub.service_path, sub.created, json.dumps(sub.definition),
                 json.dumps(sub.state.to_doc())))

    def save(self, sub: Subscription) -> None:
        """Write definition and state of an existing subscription."""
        with sub.lock:
            state = json.dumps(sub.state.to_doc())
            definition = json.dumps(sub.definition)
            sub.dirty = False
        db = self._db(sub.service)
        with db.lock:
            db.conn.execute("UPDATE flexmeter_subscriptions SET definition = ?, state = ? WHERE id = ?",
                            (definition, state, sub.id))

    def save_states(self, subs: list[Subscription]) -> None:
        """Flush the delivery state (and status) of many subscriptions, one transaction per tenant."""
        by_service: dict[str, list[tuple[str, str, str]]] = {}
        for sub in subs:
            with sub.lock:
                row = (json.dumps(sub.definition), json.dumps(sub.state.to_doc()), sub.id)
                sub.dirty = False
            by_service.setdefault(sub.service, []).append(row)
        for service, rows in by_service.items():
            db = self._db(service)
            with db.lock:
                db.conn.execute("BEGIN")
                try:
                    db.conn.executemany(
                        "UPDATE flexmeter_subscriptions SET definition = ?, state = ? WHERE id = ?", rows)
                    db.conn.execute("COMMIT")
                except BaseException:
                    db.conn.execute("ROLLBACK")
                    raise

    def delete(self, sub: Subscription) -> None:
        db = self._db(sub.service)
        with db.lock:
            db.conn.execute("DELETE FROM flexmeter_subscriptions WHERE id = ?", (sub.id,))

    def close(self) -> None:
        with self._lock:
            for db in self._dbs.values():
                with db.lock:
                    db.conn.close()
            self._dbs.clear()
