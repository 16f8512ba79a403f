"""Replay protection that survives a restart and a crash: the highest accepted invocation counter per
(tenant, system title), kept in the agent's ``outbox.db`` and written **in the same SQLite transaction as
the readings it guarded**.

Why the same transaction (and not a flush before or after the outbox commit): a counter written before
the readings are durable turns a crash between the two writes into a loss — the meter (or the MQTT
broker, or the concentrator that got no HTTP 2xx) sends the push again, the guard calls it a replay
(409 ``REPLAYED_FRAME``) and the reading only survives as dead-letter bytes. A counter written after the
commit reopens the opposite window (a replay accepted once after such a crash). Written by the outbox's
own transaction (:class:`flexmeter.iot_agents.core.outbox.OutboxParticipant`), both are durable or neither
is: the push redelivered after a crash is accepted again exactly when its reading was not stored.

Until that commit a counter is *pending*, per thread (the pipeline thread that decoded a message is the
one that commits it): it already rejects a second copy of the push (in the same batch, or from another
transport), and becomes durable with the commit. A transaction that rolls back (storage failure) drops
its pending counters from the check, so the retried batch is not mistaken for a replay, but still writes
them with the thread's next commit (the HTTP path retries the same rows).

Why by tenant and system title: the system title names the meter's security context (its keys and
counters), not the service group that happens to carry it. Keyed by apikey, a meter moved to another group
would start again from 0 and accept every old push. Within the tenant (``Fiware-Service``), because tenants
never share state: one utility's meters cannot block another's. Counters of an ``dlms-counters.db`` of an
earlier version (keyed by apikey) are migrated at start (:func:`read_legacy`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import ReplayError
from .security import ReplayGuard

log = logging.getLogger(__name__)

TABLE = "dlms_invocation_counters"
LEGACY_FILE = "dlms-counters.db"
"""The counters file of earlier versions (keyed by apikey), migrated into the outbox at start."""

Key = tuple[str, bytes]
"""(tenant, system title)"""


class InvocationCounters:
    """Every tenant's counters; an outbox participant once :meth:`attach` ed (memory only before).

    Thread-safe; ``write``/``committed``/``rolled_back`` are called by the outbox in the committing thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._durable: dict[Key, int] = {}
        self._pending: dict[int, dict[Key, int]] = {}
        """Per thread: accepted, not yet committed (checked, and written with the thread's commit)."""
        self._unconfirmed: dict[int, dict[Key, int]] = {}
        """Per thread: pending ones whose transaction rolled back (written with the next commit, not checked)."""
        self._unsaved: dict[Key, int] = {}
        """Known before the outbox was attached (migrated, or accepted in memory): written by :meth:`attach`."""
        self.attached = False

    # -- the guard's side ------------------------------------------------------------------------------------
    def guard(self, tenant: str) -> TenantReplayGuard:
        return TenantReplayGuard(self, tenant)

    def last(self, key: Key) -> int | None:
        with self._lock:
            found = self._durable.get(key)
            for pending in self._pending.values():
                counter = pending.get(key)
                if counter is not None and (found is None or counter > found):
                    found = counter
            return found

    def accept(self, key: Key, counter: int) -> None:
        with self._lock:
            if not self.attached:  # no outbox: memory only (saved when one is attached)
                if counter > self._durable.get(key, -1):
                    self._durable[key] = self._unsaved[key] = counter
                return
            pending = self._pending.setdefault(threading.get_ident(), {})
            if counter > pending.get(key, -1):
                pending[key] = counter

    def merge(self, counters: Iterable[tuple[Key, int]]) -> None:
        """Counters known from elsewhere (a migrated file): raised to them, written by :meth:`attach`."""
        with self._lock:
            for key, counter in counters:
                if counter > self._durable.get(key, -1):
                    self._durable[key] = counter
                if counter > self._unsaved.get(key, -1):
                    self._unsaved[key] = counter

    def durable(self, key: Key) -> int | None:
        """The committed counter (what a restart would start from)."""
        with self._lock:
            return self._durable.get(key)

    # -- the outbox's side (OutboxParticipant) --------------------------------------------------------------
    def attach(self, db: sqlite3.Connection) -> None:
        """Create the table, start from the stored counters and store those known before (one transaction)."""
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (tenant TEXT NOT NULL, system_title BLOB NOT NULL, "
                   "counter INTEGER NOT NULL, PRIMARY KEY (tenant, system_title))")
        with self._lock:
            unsaved = dict(self._unsaved)
        db.execute("BEGIN IMMEDIATE")
        try:
            _upsert(db, unsaved)
            rows = db.execute(f"SELECT tenant, system_title, counter FROM {TABLE}").fetchall()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        with self._lock:
            for tenant, title, counter in rows:
                key = (str(tenant), bytes(title))
                if int(counter) > self._durable.get(key, -1):
                    self._durable[key] = int(counter)
            for key in unsaved:
                if self._unsaved.get(key) == unsaved[key]:
                    del self._unsaved[key]
            self.attached = True

    def write(self, db: sqlite3.Connection) -> None:
        """Inside the outbox transaction of the calling thread: its pending counters."""
        me = threading.get_ident()
        with self._lock:
            pending = self._pending.get(me)
            unconfirmed = self._unconfirmed.get(me)
            if not pending and not unconfirmed:
                return
            rows = dict(unconfirmed or {})
            for key, counter in (pending or {}).items():
                if counter > rows.get(key, -1):
                    rows[key] = counter
        _upsert(db, rows)

    def committed(self) -> None:
        me = threading.get_ident()
        with self._lock:
            for source in (self._pending.pop(me, None), self._unconfirmed.pop(me, None)):
                for key, counter in (source or {}).items():
                    if counter > self._durable.get(key, -1):
                        self._durable[key] = counter

    def rolled_back(self) -> None:
        me = threading.get_ident()
        with self._lock:
            pending = self._pending.pop(me, None)
            if pending:
                unconfirmed = self._unconfirmed.setdefault(me, {})
                for key, counter in pending.items():
                    if counter > unconfirmed.get(key, -1):
                        unconfirmed[key] = counter


def _upsert(db: sqlite3.Connection, counters: dict[Key, int]) -> None:
    """Raise the stored counters to these (never lowers one: an old value cannot undo a newer one)."""
    if counters:
        db.executemany(
            f"INSERT INTO {TABLE} (tenant, system_title, counter) VALUES (?, ?, ?) ON CONFLICT (tenant, system_title) "
            "DO UPDATE SET counter = max(counter, excluded.counter)",
            [(tenant, title, counter) for (tenant, title), counter in counters.items()])


class TenantReplayGuard(ReplayGuard):
    """The :class:`ReplayGuard` the decoder consults, for the meters of one tenant."""

    def __init__(self, counters: InvocationCounters, tenant: str) -> None:
        super().__init__()
        self.counters = counters
        self.tenant = tenant

    def check(self, system_title: bytes, invocation_counter: int, offset: int | None = None) -> None:
        last = self.counters.last((self.tenant, bytes(system_title)))
        if last is not None and invocation_counter <= last:
            raise ReplayError("invocation counter must increase per system title", offset,
                              f"{system_title.hex()}: {invocation_counter} <= {last}")

    def accept(self, system_title: bytes, invocation_counter: int) -> None:
        self.counters.accept((self.tenant, bytes(system_title)), invocation_counter)

    def last(self, system_title: bytes) -> int | None:
        return self.counters.last((self.tenant, bytes(system_title)))


def read_legacy(path: Path, tenant_of: Callable[[str], str | None]) -> tuple[list[tuple[Key, int]], int]:
    """The counters of an earlier version's file (``(apikey, system title) -> counter``) by tenant, and how
    many rows name an apikey no group has now (left in the file, which the caller renames)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(invocation_counters)")}
        if "apikey" not in columns:
            return [], 0
        rows = db.execute("SELECT apikey, system_title, counter FROM invocation_counters").fetchall()
    finally:
        db.close()
    found: list[tuple[Key, int]] = []
    orphans = 0
    for apikey, title, counter in rows:
        tenant = tenant_of(str(apikey))
        if tenant is None:
            orphans += 1
        else:
            found.append(((tenant, bytes(title)), int(counter)))
    return found, orphans
