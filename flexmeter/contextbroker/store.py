"""Entity and registration storage: one SQLite file per tenant (WAL), one writer, an in-memory index.

Why this shape:
- Every 2xx must be committed and survive ``kill -9``: a write buffers its changes, then runs them in one
  transaction (``executemany``) and commits before the response; WAL with ``synchronous=NORMAL`` is
  durable against process crashes.
- Queries (q/mq/geo, patterns, orderBy) are evaluated in Python on ``StoredEntity`` dicts, so every
  entity of a tenant is kept in memory, indexed by (id, type, servicePath) in creation order; SQLite is
  the durable copy, read once when the tenant is opened.
- Entity dicts are never mutated once stored (a write builds a new dict), so readers can use a snapshot
  without locks and the subscription engine gets stable ``entity``/``previous`` states.
- Changes are handed to the listener (the subscription engine) after the commit and still under the
  writer lock, so their order is the commit order.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from flexmeter.contextbroker.model import EntityChange, StoredEntity
from flexmeter.contextbroker.tenancy import tenant_db_path

log = logging.getLogger(__name__)

EntityKey = tuple[str, str, str]  # (id, type, servicePath)
ChangeListener = Callable[[list[EntityChange]], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    sp TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (id, type, sp)
);
CREATE TABLE IF NOT EXISTS registrations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
"""

_UPSERT = ("INSERT INTO entities (id, type, sp, doc) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (id, type, sp) DO UPDATE SET doc=excluded.doc")

_UPDATE = "UPDATE entities SET doc=? WHERE id=? AND type=? AND sp=?"

_std_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _dumps(doc: Any) -> str:
    """A stored document's JSON: orjson (faster), the stdlib for integers beyond 64 bits."""
    try:
        return orjson.dumps(doc).decode("utf-8")
    except (orjson.JSONEncodeError, TypeError):
        return _std_dumps(doc)


def entity_key(entity: StoredEntity) -> EntityKey:
    return (entity["id"], entity["type"], entity["servicePath"])


class WriteTxn:
    """The buffered writes of one request; applied atomically by :meth:`TenantStore.write`."""

    def __init__(self, store: TenantStore) -> None:
        self._store = store
        self.pending: dict[EntityKey, StoredEntity | None] = {}
        self.changes: list[EntityChange] = []
        self.registrations: dict[str, dict[str, Any] | None] = {}
        self.forced = False  # Orion's options=forcedUpdate: every update counts as a change

    def get(self, key: EntityKey) -> StoredEntity | None:
        if key in self.pending:
            return self.pending[key]
        return self._store.entities.get(key)

    def find(self, entity_id: str, entity_type: str | None, service_path: str) -> list[StoredEntity]:
        """Entities with this id (and type, if given) in exactly ``service_path``, pending writes included."""
        if entity_type is not None:
            found = self.get((entity_id, entity_type, service_path))
            return [found] if found is not None else []
        keys = [k for k in self._store.keys_by_id.get(entity_id, ()) if k[2] == service_path]
        keys += [k for k in self.pending if k[0] == entity_id and k[2] == service_path and k not in keys]
        out = []
        for key in keys:
            entity = self.get(key)
            if entity is not None:
                out.append(entity)
        return out

    def put(self, entity: StoredEntity) -> None:
        self.pending[entity_key(entity)] = entity

    def delete(self, key: EntityKey) -> None:
        self.pending[key] = None

    def change(self, change: EntityChange) -> None:
        self.changes.append(change)

    def put_registration(self, reg_id: str, doc: dict[str, Any] | None) -> None:
        self.registrations[reg_id] = doc


class TenantStore:
    """The entities and registrations of one tenant."""

    def __init__(self, path: Path, service: str, listener: ChangeListener | None = None) -> None:
        self.path = path
        self.service = service
        self.listener = listener
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self.entities: dict[EntityKey, StoredEntity] = {}
        self.keys_by_id: dict[str, list[EntityKey]] = {}
        self.seq: dict[EntityKey, int] = {}  # creation order, for sorting lookups by id
        self._next_seq = 0
        self.registrations: dict[str, dict[str, Any]] = {}
        self._snapshot: list[StoredEntity] | None = None
        for (doc,) in self._conn.execute("SELECT doc FROM entities ORDER BY seq"):
            entity: StoredEntity = json.loads(doc)
            self._index_put(entity_key(entity), entity)
        for (doc,) in self._conn.execute("SELECT doc FROM registrations ORDER BY seq"):
            reg = json.loads(doc)
            self.registrations[reg["id"]] = reg

    # -- reads -------------------------------------------------------------------------------------
    def snapshot(self) -> list[StoredEntity]:
        """Every entity in creation order; a list that later writes never modify."""
        snap = self._snapshot
        if snap is None:
            with self._index_lock:
                snap = self._snapshot = list(self.entities.values())
        return snap

    def by_id(self, entity_id: str) -> list[StoredEntity]:
        with self._index_lock:
            keys = list(self.keys_by_id.get(entity_id, ()))
            return [self.entities[k] for k in keys if k in self.entities]

    def count(self) -> int:
        return len(self.entities)

    # -- writes ------------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[WriteTxn]:
        """Serialize a read-modify-write; commits when the block ends without an exception."""
        with self._write_lock:
            txn = WriteTxn(self)
            yield txn
            self._commit(txn)

    def _commit(self, txn: WriteTxn) -> None:
        if not txn.pending and not txn.registrations:
            return
        upserts = [(k[0], k[1], k[2], _dumps(e)) for k, e in txn.pending.items() if e is not None]
        deletes = [k for k, e in txn.pending.items() if e is None]
        reg_upserts = [(rid, _dumps(doc)) for rid, doc in txn.registrations.items() if doc is not None]
        reg_deletes = [(rid,) for rid, doc in txn.registrations.items() if doc is None]
        conn = self._conn
        if len(upserts) == 1 and not deletes and not txn.registrations:
            # one statement: SQLite's implicit transaction, one commit; a plain UPDATE (half the
            # cost of the upsert) when the entity is known to exist
            row = upserts[0]
            if (row[0], row[1], row[2]) in self.entities:
                conn.execute(_UPDATE, (row[3], row[0], row[1], row[2]))
            else:
                conn.execute(_UPSERT, row)
        else:
            self._commit_many(upserts, deletes, reg_upserts, reg_deletes)
        self._apply_to_index(txn)

    def _commit_many(self, upserts: list[tuple[str, str, str, str]], deletes: list[EntityKey],
                     reg_upserts: list[tuple[str, str]], reg_deletes: list[tuple[str]]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if deletes:
                conn.executemany("DELETE FROM entities WHERE id=? AND type=? AND sp=?", deletes)
            if upserts:
                conn.executemany(_UPSERT, upserts)
            if reg_deletes:
                conn.executemany("DELETE FROM registrations WHERE id=?", reg_deletes)
            if reg_upserts:
                conn.executemany(
                    "INSERT INTO registrations (id, doc) VALUES (?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET doc=excluded.doc",
                    reg_upserts,
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _apply_to_index(self, txn: WriteTxn) -> None:
        with self._index_lock:
            for key, entity in txn.pending.items():
                if entity is None:
                    self._index_delete(key)
                else:
                    self._index_put(key, entity)
            self._snapshot = None
            for rid, doc in txn.registrations.items():
                if doc is None:
                    self.registrations.pop(rid, None)
                else:
                    self.registrations[rid] = doc
        if txn.changes and self.listener is not None:
            try:
                self.listener(txn.changes)
            except Exception:  # committed already: the client must still get its 2xx
                log.exception("change listener failed on %d changes", len(txn.changes))

    def purge_expired(self, now: float) -> int:
        """Delete entities whose ``dateExpires`` has passed (Orion's TTL monitor: no notification)."""
        expired = [k for k, e in list(self.entities.items())
                   if e.get("expDate") is not None and e["expDate"] <= now]  # type: ignore[operator]
        if not expired:
            return 0
        with self.write() as txn:
            for key in expired:
                entity = txn.get(key)
                expires = entity.get("expDate") if entity is not None else None
                if expires is not None and expires <= now:
                    txn.delete(key)
        return len(expired)

    def _index_put(self, key: EntityKey, entity: StoredEntity) -> None:
        if key not in self.entities:
            self.keys_by_id.setdefault(key[0], []).append(key)
            self._next_seq += 1
            self.seq[key] = self._next_seq
        self.entities[key] = entity

    def _index_delete(self, key: EntityKey) -> None:
        if self.entities.pop(key, None) is not None:
            self.seq.pop(key, None)
            keys = self.keys_by_id.get(key[0])
            if keys is not None:
                keys.remove(key)
                if not keys:
                    del self.keys_by_id[key[0]]

    def close(self) -> None:
        with self._write_lock:
            self._conn.close()


class Store:
    """Every tenant's :class:`TenantStore`, opened on first use (``base`` is the default tenant's file)."""

    def __init__(self, base: Path, listener: ChangeListener | None = None) -> None:
        self.base = Path(base)
        self.listener = listener
        self._tenants: dict[str, TenantStore] = {}
        self._lock = threading.Lock()

    def tenant(self, service: str) -> TenantStore:
        store = self._tenants.get(service)
        if store is None:
            with self._lock:
                store = self._tenants.get(service)
                if store is None:
                    store = TenantStore(tenant_db_path(self.base, service), service, self._notify)
                    self._tenants[service] = store
        return store

    def existing_tenant(self, service: str) -> TenantStore | None:
        """The tenant's store if it has a database already (reads never create a tenant's file)."""
        if service in self._tenants or tenant_db_path(self.base, service).exists():
            return self.tenant(service)
        return None

    def _notify(self, changes: list[EntityChange]) -> None:
        if self.listener is not None:
            self.listener(changes)

    def open_tenants(self) -> list[TenantStore]:
        with self._lock:
            return list(self._tenants.values())

    def open_all(self, services: list[str]) -> None:
        for service in services:
            self.tenant(service)

    def close(self) -> None:
        with self._lock:
            for store in self._tenants.values():
                store.close()
            self._tenants.clear()
