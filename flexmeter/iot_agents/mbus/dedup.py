"""Duplicate telegrams: the same frame heard by two concentrators, or repeated by the meter or a gateway.

A telegram is identified by (meter secondary address, access number, the meter's own time or None). The
access number wraps every 256 telegrams, so a key only counts as seen for ``window`` seconds of the
frames' *receive* times (the concentrator's clock when it gives one): a replay of a buffered uplink hours
later is still recognised, and the next lap of the access number is not.
Bounded memory: entries older than the window behind the newest receive time are pruned, and at most
``max_entries`` are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class DuplicateFilter:
    def __init__(self, window: float = 900.0, max_entries: int = 200_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._newest = 0.0
        self._lock = threading.Lock()

    def seen(self, key: Hashable, at: float) -> bool:
        """True if ``key`` was seen within the window around ``at``; else remember it and return False."""
        with self._lock:
            previous = self._seen.get(key)
            if previous is not None and abs(at - previous) <= self.window:
                return True
            self._seen[key] = at
            self._seen.move_to_end(key)
            self._newest = max(self._newest, at)
            self._prune()
            return False

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def _prune(self) -> None:
        horizon = self._newest - 2 * self.window
        while self._seen:
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if oldest_at >= horizon and len(self._seen) <= self.max_entries:
                break
            del self._seen[oldest_key]

    def __len__(self) -> int:
        return len(self._seen)
