"""Replay protection that survives a restart: the highest accepted invocation counter per system title,
per service group (apikey, hence per tenant), kept in SQLite next to the agent's registry.

:class:`PersistentReplayGuard` is a :class:`.security.ReplayGuard` whose counters start from the store and
whose accepted counters are written back with :meth:`PersistentReplayGuard.flush` — the DLMS family
flushes once per uplink message, after decoding it and before the core stores its readings, so a push
accepted before a restart (or a crash) is rejected as a replay after it. The write only ever raises a
counter (``max``), so concurrent flushes and an old guard cannot lower one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from .security import ReplayGuard

log = logging.getLogger(__name__)

FILE_NAME = "dlms-counters.db"


class CounterStore:
    """``(apikey, system title) → highest accepted invocation counter`` in one SQLite file (thread-safe)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS invocation_counters (apikey TEXT NOT NULL, system_title BLOB NOT NULL, "
            "counter INTEGER NOT NULL, PRIMARY KEY (apikey, system_title))")

    def load(self, apikey: str) -> dict[bytes, int]:
        with self._lock:
            rows = self._db.execute("SELECT system_title, counter FROM invocation_counters WHERE apikey = ?",
                                    (apikey,)).fetchall()
        return {bytes(title): int(counter) for title, counter in rows}

    def save(self, apikey: str, counters: dict[bytes, int]) -> None:
        """Raise the stored counters to these (never lowers one), in one transaction."""
        if not counters:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO invocation_counters (apikey, system_title, counter) VALUES (?, ?, ?) "
                "ON CONFLICT (apikey, system_title) DO UPDATE SET counter = max(counter, excluded.counter)",
                [(apikey, title, counter) for title, counter in counters.items()])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PersistentReplayGuard(ReplayGuard):
    """A replay guard of one service group whose accepted counters go to a :class:`CounterStore`."""

    def __init__(self, apikey: str, store: CounterStore | None = None) -> None:
        super().__init__()
        self.apikey = apikey
        self.store: CounterStore | None = None
        self._dirty: dict[bytes, int] = {}
        self._dirty_lock = threading.Lock()
        if store is not None:
            self.attach(store)

    def attach(self, store: CounterStore) -> None:
        """Start from the stored counters (keeping any higher one accepted before) and persist from now on."""
        stored = store.load(self.apikey)
        with self._dirty_lock:
            for title, counter in stored.items():
                if counter > self._last.get(title, -1):
                    self._last[title] = counter
            self._dirty.update(self._last)  # what was accepted before the store was there
            self.store = store
        self.flush()

    def accept(self, system_title: bytes, invocation_counter: int) -> None:
        key = bytes(system_title)
        with self._dirty_lock:
            if invocation_counter > self._last.get(key, -1):
                self._last[key] = invocation_counter
                if invocation_counter > self._dirty.get(key, -1):
                    self._dirty[key] = invocation_counter

    def flush(self) -> None:
        """Write the counters accepted since the last flush (no-op without a store)."""
        with self._dirty_lock:
            if self.store is None or not self._dirty:
                return
            dirty, self._dirty = self._dirty, {}
            store = self.store
        try:
            store.save(self.apikey, dirty)
        except sqlite3.Error:
            log.exception("cannot persist DLMS invocation counters of %s; they stay in memory", self.apikey)
            with self._dirty_lock:
                for title, counter in dirty.items():
                    if counter > self._dirty.get(title, -1):
                        self._dirty[title] = counter
