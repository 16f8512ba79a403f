"""The gateway's store-and-forward buffer: every uplink is written here first (SQLite, WAL) and deleted only
once the MQTT broker acknowledged it (PUBACK), so an uplink outage or a restart loses nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path


class UplinkBuffer:
    def __init__(self, path: Path | str, max_rows: int = 1_000_000) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS uplinks (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL)")
        self._lock = threading.Lock()
        self.max_rows = max_rows
        self.discarded = 0

    def put(self, topic: str, payload: bytes) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO uplinks (topic, payload, created) VALUES (?, ?, ?)",
                                      (topic, payload, time.time()))
            depth = self._db.execute("SELECT COUNT(*) FROM uplinks").fetchone()[0]
            if depth > self.max_rows:  # bounded: a field computer's disk is small; the oldest go first
                excess = depth - self.max_rows
                self._db.execute("DELETE FROM uplinks WHERE id IN (SELECT id FROM uplinks ORDER BY id LIMIT ?)",
                                 (excess,))
                self.discarded += excess
            return int(cursor.lastrowid or 0)

    def oldest(self, limit: int = 100) -> list[tuple[int, str, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM uplinks ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def delete(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM uplinks WHERE id = ?", (row_id,))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM uplinks").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
