"""Notifications in: canonical readings stored once, and the periods they change marked for computing.

Idempotence: each observation of an entity is keyed (entity, observation time), each value (entity,
quantity, observation time); ``INSERT OR IGNORE`` keeps the first, so a replayed notification inserts and
marks nothing. Order tolerance: a late reading marks every 15-min period between its neighbours, so the
periods it changes are recomputed; results are functions of the stored set of readings only.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

from flexmeter.service.config import ServiceConfig
from flexmeter.service.errors import InvalidNotification
from flexmeter.service.periods import SLOT, local, local_date, period_of, slots_between
from flexmeter.service.readings import REGISTERS, TOPOLOGY_TYPES, Observation, observe
from flexmeter.service.store import Store

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: how far back a late reading may reopen periods (older ones are ignored for recomputation)
MAX_REOPEN_S = 62 * 86400.0
#: an "ok" observation counts as restoration for an outage this recent
RESTORE_WINDOW_S = 7 * 86400.0


class Ingestor:
    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self.last_seen: dict[tuple[str, str, str], float] = {}
        self.last_value: dict[tuple[str, str, str], float] = {}
        self.topology_seen: dict[tuple[str, str], str] = {}
        self.paths: dict[tuple[str, str], str] = {}
        #: set when a reading refers (refDevice) to an entity whose topology the service has not seen
        self.unknown_refs = False
        self.out_times: dict[tuple[str, str], list[float]] = {}
        self.ok_times: dict[tuple[str, str], list[float]] = {}
        for tk, e, t, v in store.query("SELECT tk, e, t, v FROM readings JOIN series USING (s) "
                                       "WHERE q LIKE 'supply:%'"):
            (self.out_times if v else self.ok_times).setdefault((tk, e), []).append(float(t))

    def ingest(self, tk: str, entities: Iterable[Json], service_path: str | None = None) -> dict[str, int]:
        """Store what the entities say; returns counts (entities, new observations, duplicates).

        ``service_path``: the entities' own path (remembered as the ``_path`` property: the breaker writes
        its command there), when the notification names one."""
        now = time.time()
        stats = {"entities": 0, "new": 0, "duplicates": 0, "topology": 0, "rejected": 0}
        dirty: set[tuple[str, str, float]] = set()
        readings: list[Observation] = []
        with self.store.transaction() as conn:
            for entity in entities:
                stats["entities"] += 1
                try:
                    observation = observe(entity, now)
                except InvalidNotification as exc:  # one bad entity must not cost the others
                    stats["rejected"] += 1
                    log.warning("entity rejected: %s", exc.description)
                    continue
                if service_path and self.paths.get((tk, observation.entity_id)) != service_path:
                    self.paths[(tk, observation.entity_id)] = service_path
                    conn.execute("INSERT OR REPLACE INTO props VALUES (?, ?, '_path', ?)",
                                 (tk, observation.entity_id, json.dumps(service_path)))
                if (observation.links or observation.properties) and self._topology(conn, tk, observation):
                    stats["topology"] += 1
                if observation.entity_type in TOPOLOGY_TYPES:
                    continue
                if observation.breaker:
                    self._breaker(conn, tk, observation, now)
                if observation.entity_type == "Alert":  # an agent's last gasp: an outage of its source meter
                    sources = observation.links.get("alertSource") or []
                    if sources and observation.supply:
                        self._supply(conn, tk, sources[0], observation.t, observation.supply, dirty)
                    continue
                if observation.values or observation.supply:
                    readings.append(observation)
            new = self._new_observations(conn, tk, readings)
            stats["new"] = len(new)
            stats["duplicates"] = len(readings) - len(new)
            self._store(conn, tk, new, now, dirty)
            for observation in readings:
                if observation.supply:
                    self._supply(conn, tk, observation.entity_id, observation.t, observation.supply, dirty)
            if dirty:
                conn.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?, ?, ?)",
                                 [(tk, kind, key, start) for kind, key, start in dirty])
        return stats

    # -- topology ---------------------------------------------------------------------------------------
    def _topology(self, conn: sqlite3.Connection, tk: str, obs: Observation) -> bool:
        """Upsert the entity's relationships and properties, only when they changed (memoised)."""
        signature = repr((obs.entity_type, obs.links, obs.properties))
        if self.topology_seen.get((tk, obs.entity_id)) == signature:
            return False
        self.topology_seen[(tk, obs.entity_id)] = signature
        for rel, targets in obs.links.items():
            if rel == "alertSource":
                continue
            if rel == "refDevice" and obs.entity_type not in TOPOLOGY_TYPES and any(
                    (tk, target) not in self.topology_seen for target in targets):
                self.unknown_refs = True
            conn.execute("DELETE FROM links WHERE tk=? AND e=? AND rel=?", (tk, obs.entity_id, rel))
            conn.executemany("INSERT OR IGNORE INTO links VALUES (?, ?, ?, ?)",
                             [(tk, obs.entity_id, rel, target) for target in targets])
        props = dict(obs.properties, entityType=obs.entity_type)
        conn.executemany("INSERT OR REPLACE INTO props VALUES (?, ?, ?, ?)",
                         [(tk, obs.entity_id, name, json.dumps(value)) for name, value in props.items()])
        return True

    def _breaker(self, conn: sqlite3.Connection, tk: str, obs: Observation, now: float) -> None:
        status = obs.breaker.get("breaker_status")
        if status not in ("OK", "ERROR", "PENDING", "DELIVERED", "EXPIRED"):
            return
        conn.execute(
            "UPDATE breaker SET status=?, info=?, updated_at=? WHERE id = (SELECT max(id) FROM breaker WHERE tk=? "
            "AND meter=?) AND status NOT IN ('OK', 'ERROR', 'FAILED')",
            (status, obs.breaker.get("breaker_info", ""), now, tk, obs.entity_id),
        )

    # -- readings ---------------------------------------------------------------------------------------
    def _new_observations(self, conn: sqlite3.Connection, tk: str, readings: list[Observation]) -> list[Observation]:
        """The observations whose (entity, time) is not stored yet (nor earlier in the same notification)."""
        if not readings:
            return []
        low, high = min(o.t for o in readings), max(o.t for o in readings)
        ids = sorted({s for s in (self.store.sid(tk, o.entity_id) for o in readings) if s is not None})
        seen: set[tuple[int, float]] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(conn.execute(f"SELECT s, t FROM readings WHERE s IN ({marks}) AND q='_' AND t>=? AND t<=?",
                                     (*chunk, low, high)).fetchall())
        new: list[Observation] = []
        for observation in readings:
            key = (self.store.series_id(tk, observation.entity_id), observation.t)
            if key not in seen and observation.values:
                seen.add(key)
                new.append(observation)
        return new

    def _store(self, conn: sqlite3.Connection, tk: str, new: list[Observation], now: float,
               dirty: set[tuple[str, str, float]]) -> None:
        if not new:
            return
        rows: list[tuple[int, str, float, float]] = []
        counts: dict[tuple[str, str], int] = {}
        meters: dict[str, list[Any]] = {}
        for obs in new:
            s = self.store.series_id(tk, obs.entity_id)
            rows.append((s, "_", obs.t, 0.0))
            rows.extend((s, q, obs.t, v) for q, v in obs.values.items())
            day = local_date(obs.t, self.config.timezone).isoformat()
            counts[(obs.entity_id, day)] = counts.get((obs.entity_id, day), 0) + 1
            meter = meters.get(obs.entity_id)
            if meter is None:
                meters[obs.entity_id] = [tk, obs.entity_id, obs.entity_type, obs.vector, obs.t, obs.t, now, 1]
            else:
                meter[4], meter[5], meter[7] = min(meter[4], obs.t), max(meter[5], obs.t), meter[7] + 1
                meter[3] = meter[3] or obs.vector
            self._mark(conn, tk, obs, dirty)
        conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO daily_counts VALUES (?, ?, ?, ?) ON CONFLICT (tk, e, day) DO UPDATE SET "
                         "n = n + excluded.n", [(tk, e, day, n) for (e, day), n in counts.items()])
        conn.executemany(
            "INSERT INTO meters VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tk, e) DO UPDATE SET "
            "first_t = min(first_t, excluded.first_t), last_t = max(last_t, excluded.last_t), "
            "last_wall = excluded.last_wall, n = n + excluded.n, vector = coalesce(excluded.vector, vector)",
            [tuple(m) for m in meters.values()])

    def _mark(self, conn: sqlite3.Connection, tk: str, obs: Observation, dirty: set[tuple[str, str, float]]) -> None:
        e, t, values, tz = obs.entity_id, obs.t, obs.values, self.config.timezone
        register = REGISTERS.get(obs.vector or "")
        if register and register in values:
            key = (tk, e, register)
            last = self.last_seen.get(key)
            if last is None:
                row = conn.execute("SELECT max(t) FROM readings WHERE s=? AND q=? AND t<?",
                                   (self.store.sid(tk, e), register, t)).fetchone()
                last = row[0]
            if last is not None and t > last:
                lo, hi = last, t
            else:
                prev, nxt = self.store.neighbours(tk, e, register, t)
                lo, hi = prev if prev is not None else t, nxt if nxt is not None else t
            lo = max(lo, t - MAX_REOPEN_S)
            for start in slots_between(lo, hi):
                if start + SLOT <= hi:  # only periods the readings now reach the end of can be computed
                    dirty.add(("p15", e, start))
            self.last_seen[key] = max(t, self.last_seen.get(key, t))
        if "t_f" in values or "dt" in values:
            self._mark_completed(tk, e, "h_t", t, SLOT, lambda x: x - x % SLOT, "dt", dirty)
        if "h_p" in values or "h_pk" in values:
            self._mark_completed(tk, e, "h_day", t, 86400.0, lambda x: period_of(x, "P1D", tz)[0], "peak", dirty)
        if "w_flow" in values or "w_vol" in values:
            moment = local(t, tz)
            day_start = period_of(t, "P1D", tz)[0]
            night_end = moment.replace(hour=self.config.night_end_hour, minute=0, second=0, microsecond=0).timestamp()
            previous_t = self.last_value.get((tk, e, "w_t"))
            late = previous_t is not None and t < previous_t
            in_night = self.config.night_start_hour <= moment.hour < self.config.night_end_hour
            if (in_night and late) or (t >= night_end and (previous_t is None or previous_t < night_end)):
                dirty.add(("night", e, day_start))  # a late night reading, or the first one after the night
            self.last_value[(tk, e, "w_t")] = max(t, previous_t or t)
            reverse = values.get("w_rev")
            previous = self.last_value.get((tk, e, "w_rev"))
            if values.get("w_flow", 0.0) < 0 or (reverse is not None and previous is not None and reverse > previous):
                dirty.add(("backflow", e, period_of(t, "P1D", tz)[0]))
            if reverse is not None:
                self.last_value[(tk, e, "w_rev")] = reverse
        if "_origin" in values:
            dirty.add(("p15", e, t - t % SLOT))

    def _mark_completed(self, tk: str, e: str, name: str, t: float, length: float, start_of: Callable[[float], float],
                        kind: str, dirty: set[tuple[str, str, float]]) -> None:
        """Mark the periods a reading completes: those it moves past (in order), or its own (late)."""
        previous = self.last_value.get((tk, e, name))
        if previous is None:  # first reading since (re)start: continue from the stored ones
            previous = self.store.neighbours(tk, e, "_", t)[0]
        if previous is None or t < previous:
            dirty.add((kind, e, start_of(t)))  # late data: its period is recomputed (or waits, if open)
        else:
            begin, current = start_of(previous), start_of(t)
            while begin < current:
                dirty.add((kind, e, begin))
                begin = start_of(begin + length + 3600.0) if length >= 86400.0 else begin + length
        self.last_value[(tk, e, name)] = max(t, previous or t)

    def _supply(self, conn: sqlite3.Connection, tk: str, meter: str, t: float,
                supply: list[tuple[str, bool]], dirty: set[tuple[str, str, float]]) -> None:
        key = (tk, meter)
        outs = self.out_times.get(key)
        for phase, out in supply:
            if not out:
                if not outs:
                    continue
                last_out = max((o for o in outs if o <= t), default=None)
                if last_out is None or t - last_out > RESTORE_WINDOW_S:
                    continue
                if any(last_out < ok < t for ok in self.ok_times.get(key, [])):
                    continue
            inserted = conn.execute("INSERT OR IGNORE INTO readings VALUES (?, ?, ?, ?)",
                                    (self.store.series_id(tk, meter), f"supply:{phase}", t,
                                     1.0 if out else 0.0)).rowcount > 0
            if inserted:
                (self.out_times if out else self.ok_times).setdefault(key, []).append(t)
                outs = self.out_times.get(key)
                dirty.add(("out", meter, 0.0))
