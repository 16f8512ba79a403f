"""The computation pass: every dirty period is recomputed from the stored readings and, when its result
changed, the result entity goes to the outbox. Each handler returns True when the period is settled
(its dirty mark is removed) or False to look again on the next pass (e.g. a balance waiting for meters).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flexmeter.service.analytics import balance as balance_mod
from flexmeter.service.analytics import heat, outages, water
from flexmeter.service.analytics.registers import completeness, peak_rate, register_delta, typical_interval
from flexmeter.service.config import ServiceConfig
from flexmeter.service.periods import SLOT, day_bounds, iso, local, local_date, period_of
from flexmeter.service.readings import REGISTERS
from flexmeter.service.results import (
    BUILDING_KEY,
    anomaly_entity,
    balance_entity,
    building_key,
    outage_entity,
    profile_entity,
)
from flexmeter.service.store import Store
from flexmeter.service.topology import Topology

log = logging.getLogger(__name__)
Json = dict[str, Any]
Handler = Callable[[sqlite3.Connection, str, str, float], bool]
AGGREGATES = ("PT1H", "P1D", "P1M")
#: dirty periods computed per transaction (the store lock is held for one transaction)
TRANSACTION_ROWS = 100
#: wall-clock seconds between silence checks (a silence shorter than that in wall time is found as a gap)
SILENCE_CHECK_S = 1.0
SILENCE_CHECK_MARGIN_S = 5.0
#: wall-clock seconds between saves of the silence check's marks; how far back a meter new to it is checked
SILENCE_FLUSH_S = 30.0
#: a meter whose readings arrived this recently (wall clock) is late, not silent: its source lags the others
#: (a fast simulation, a backfill); no open silence is raised for it (a real gap is still found from its data)
SILENCE_GRACE_S = 5.0
SILENCE_LOOKBACK_S = 86400.0
#: how far back a register's peak rate is read when a decrease has to be told roll-over or replacement
RATE_WINDOW_S = 86400.0


def _same(a: tuple[Any, ...] | None, b: tuple[Any, ...]) -> bool:
    if a is None or len(a) != len(b):
        return False
    return all((abs(x - y) < 1e-9 if isinstance(x, float) and isinstance(y, float) else x == y)
               for x, y in zip(a, b, strict=True))


class Jobs:
    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config
        self.topology = Topology(store)
        self._data_time: dict[str, float] = {}
        self._meters: dict[tuple[str, str], tuple[str | None, float]] = {}
        self.handlers: dict[str, Handler] = {
            "p15": self.profile15,
            "bldg": self.building_profile,
            "agg": self.aggregate,
            "bal": self.balance,
            "dt": self.delta_t,
            "peak": self.peak,
            "night": self.night,
            "backflow": self.backflow,
            "out": self.meter_outage,
            "area_out": self.area_outage,
        }
        self.last_silence_check = 0.0
        #: each meter's last observation at the previous silence check (a gap since then may be a silence);
        #: loaded from and saved to the store (``silence_seen``) so a restart misses no gap
        self._silence_seen: dict[tuple[str, str], float] | None = None
        #: (tenant, meter) -> (its last observation, its silence limit then): one query per new observation
        self._silence_limits: dict[tuple[str, str], tuple[float, float]] = {}
        self._silence_flushed = 0.0
        self.last_prune = time.time()

    # -- the pass -----------------------------------------------------------------------------------------
    def run_pass(self, limit: int = 20000) -> int:
        """Process the dirty marks kind by kind (in dependency order); returns how many were settled."""
        self.topology.clear()
        self._data_time.clear()
        self._meters.clear()
        settled = 0
        for kind, handler in self.handlers.items():
            rows = self.store.query("SELECT tk, key, start FROM dirty WHERE kind=? LIMIT ?", (kind, limit))
            # short transactions: notifications wait for the store lock, and the broker gives up on a
            # notification after a few seconds (Orion does not retry): a pass must not hold it for long
            for first in range(0, len(rows), TRANSACTION_ROWS):
                with self.store.transaction() as conn:
                    done = []
                    for tk, key, start in rows[first:first + TRANSACTION_ROWS]:
                        try:
                            finished = handler(conn, tk, key, float(start))
                        except Exception:
                            log.exception("computing %s %s %s failed", kind, key, start)
                            finished = True
                        if finished:
                            done.append((tk, kind, key, start))
                    conn.executemany("DELETE FROM dirty WHERE tk=? AND kind=? AND key=? AND start=?", done)
                    settled += len(done)
        if time.time() - self.last_silence_check >= SILENCE_CHECK_S:
            self.silence()
        if time.time() - self.last_prune >= 3600.0:
            self.prune()
        return settled

    def prune(self) -> int:
        """Drop raw readings older than the retention (results, counts and alarms stay)."""
        self.last_prune = time.time()
        row = self.store.one("SELECT max(last_t) FROM meters")
        if not row or row[0] is None:
            return 0
        with self.store.transaction() as conn:
            return int(conn.execute("DELETE FROM readings WHERE t < ?",
                                    (float(row[0]) - self.config.retention_days * 86400.0,)).rowcount)

    def pending(self) -> int:
        row = self.store.one("SELECT count(*) FROM dirty")
        return int(row[0]) if row else 0

    def _mark(self, conn: sqlite3.Connection, tk: str, kind: str, key: str, start: float) -> None:
        conn.execute("INSERT OR IGNORE INTO dirty VALUES (?, ?, ?, ?)", (tk, kind, key, start))

    def data_time(self, tk: str) -> float:
        if tk not in self._data_time:
            row = self.store.one("SELECT max(last_t) FROM meters WHERE tk=?", (tk,))
            self._data_time[tk] = float(row[0]) if row and row[0] is not None else 0.0
        return self._data_time[tk]

    def _meter(self, tk: str, e: str) -> tuple[str | None, float]:
        """(vector, last observation) as of this pass: a meter's marks that are not due yet are asked again on
        every pass, several per meter."""
        found = self._meters.get((tk, e))
        if found is None:
            row = self.store.one("SELECT vector, last_t FROM meters WHERE tk=? AND e=?", (tk, e))
            found = self._meters[(tk, e)] = (row[0], float(row[1])) if row else (None, 0.0)
        return found

    # -- profiles -----------------------------------------------------------------------------------------
    def _resets(self, tk: str, e: str, t0: float, t1: float) -> list[float]:
        """Explicit replacements (``dateEnergyMeteringStarted``): the time the origin changed between two
        observations, and the origin itself (the new register's start, when it lies between two readings)."""
        origins = self.store.points(tk, e, "_origin", t0 - 86400.0, t1)
        return [tb for (_, a), (tb, b) in itertools.pairwise(origins) if a != b] + sorted({v for _, v in origins})

    def _peak_rate(self, tk: str, e: str, q: str, points: list[tuple[float, float]], start: float) -> float | None:
        """The register's peak rate over the day before the period, read only when the period's readings
        decrease (a roll-over candidate): the yardstick of a plausible wrap (analytics.registers)."""
        if all(vb >= va for (_, va), (_, vb) in itertools.pairwise(points)):
            return None
        return peak_rate(self.store.points(tk, e, q, start - RATE_WINDOW_S, start + SLOT))

    def profile15(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        vector, _ = self._meter(tk, e)
        register = REGISTERS.get(vector or "")
        if register is None or vector is None:
            return True
        end = start + SLOT
        points = self.store.points(tk, e, register, start, end)
        resets = self._resets(tk, e, start, end)
        delta = register_delta(points, start, end, tolerance=self.config.boundary_tolerance_s, resets=resets,
                               max_rate=self._peak_rate(tk, e, register, points, start))
        if delta is None:
            return True
        production = None
        estimated = delta.estimated
        if vector == "electricity":
            exports = self.store.points(tk, e, "e_exp", start, end)
            exported = register_delta(exports, start, end, tolerance=self.config.boundary_tolerance_s,
                                      resets=resets, max_rate=self._peak_rate(tk, e, "e_exp", exports, start))
            if exported is not None:
                production = exported.value
                estimated = estimated or exported.estimated
        share = completeness(points, start, end, typical_interval(points))
        row = (delta.value, production, int(estimated), share)
        old = conn.execute("SELECT consumption, production, estimated, completeness FROM profiles WHERE tk=? AND "
                           "e=? AND res='PT15M' AND start=?", (tk, e, start)).fetchone()
        if _same(old, row):
            return True
        conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, 'PT15M', ?, ?, ?, ?, ?, ?, ?, 1)",
                     (tk, e, start, end, vector, *row))
        self.store.enqueue(conn, tk, [profile_entity(e, vector, "PT15M", start, end, delta.value, production,
                                                     estimated, share)])
        for resolution in AGGREGATES:
            self._mark(conn, tk, "agg", f"{resolution}|{e}", period_of(start, resolution, self.config.timezone)[0])
        for area in self.topology.areas(tk, e):
            self._mark(conn, tk, "bal", area, start)
        building = self.topology.building(tk, e)
        if building is not None:
            self._mark(conn, tk, "bldg", building_key(building, vector), start)
        return True

    def building_profile(self, conn: sqlite3.Connection, tk: str, key: str, start: float) -> bool:
        """A building's 15-min profile per commodity: the sum of its meters' (estimated unless all have one)."""
        building, _, vector = key.partition(BUILDING_KEY)
        meters = [m for m in self.topology.members(tk, building, "refBuilding")
                  if self._meter(tk, m)[0] == vector]
        if not meters:
            return True
        marks = ",".join("?" * len(meters))
        rows = conn.execute(f"SELECT consumption, production, estimated, completeness FROM profiles WHERE tk=? AND "
                            f"res='PT15M' AND start=? AND e IN ({marks})", (tk, start, *meters)).fetchall()
        if not rows:
            return True
        productions = [r[1] for r in rows if r[1] is not None]
        row = (sum(r[0] for r in rows), sum(productions) if productions else None,
               int(any(r[2] for r in rows) or len(rows) < len(meters)), sum(r[3] for r in rows) / len(meters))
        old = conn.execute("SELECT consumption, production, estimated, completeness FROM profiles WHERE tk=? AND "
                           "e=? AND res='PT15M' AND start=?", (tk, key, start)).fetchone()
        if _same(old, row):
            return True
        conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, 'PT15M', ?, ?, ?, ?, ?, ?, ?, 1)",
                     (tk, key, start, start + SLOT, vector, *row))
        self.store.enqueue(conn, tk, [profile_entity(key, vector, "PT15M", start, start + SLOT, row[0], row[1],
                                                     bool(row[2]), row[3])])
        for resolution in AGGREGATES:
            self._mark(conn, tk, "agg", f"{resolution}|{key}", period_of(start, resolution, self.config.timezone)[0])
        return True

    def aggregate(self, conn: sqlite3.Connection, tk: str, key: str, start: float) -> bool:
        resolution, _, e = key.partition("|")
        begin, end = period_of(start, resolution, self.config.timezone)
        rows = conn.execute("SELECT consumption, production, estimated, completeness, vector FROM profiles WHERE "
                            "tk=? AND e=? AND res='PT15M' AND start>=? AND start<?", (tk, e, begin, end)).fetchall()
        if not rows:
            return True
        expected = round((end - begin) / SLOT)
        consumption = sum(r[0] for r in rows)
        productions = [r[1] for r in rows if r[1] is not None]
        production = sum(productions) if productions else None
        estimated = any(r[2] for r in rows) or len(rows) < expected
        share = sum(r[3] for r in rows) / expected
        complete = int(len(rows) == expected)
        vector = rows[0][4]
        row = (consumption, production, int(estimated), share, complete)
        old = conn.execute("SELECT consumption, production, estimated, completeness, complete FROM profiles WHERE "
                           "tk=? AND e=? AND res=? AND start=?", (tk, e, resolution, begin)).fetchone()
        if _same(old, row):
            return True
        conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (tk, e, resolution, begin, end, vector, *row))
        if complete:
            self.store.enqueue(conn, tk, [profile_entity(e, vector, resolution, begin, end, consumption, production,
                                                         estimated, share)])
        return True

    # -- energy balance -----------------------------------------------------------------------------------
    def _energy(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> balance_mod.MeterEnergy | None:
        row = conn.execute("SELECT consumption, production, estimated FROM profiles WHERE tk=? AND e=? AND "
                           "res='PT15M' AND start=?", (tk, e, start)).fetchone()
        if row is None:
            return None
        return balance_mod.MeterEnergy(float(row[0]), float(row[1] or 0.0), bool(row[2]))

    def _recent_mean(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> balance_mod.MeterEnergy | None:
        rows = conn.execute("SELECT consumption, production FROM profiles WHERE tk=? AND e=? AND res='PT15M' AND "
                            "start<? AND estimated=0 ORDER BY start DESC LIMIT 8", (tk, e, start)).fetchall()
        if not rows:
            return None
        return balance_mod.MeterEnergy(sum(r[0] for r in rows) / len(rows),
                                       sum(r[1] or 0.0 for r in rows) / len(rows), True)

    def balance(self, conn: sqlite3.Connection, tk: str, area: str, start: float) -> bool:
        supply_meters = self.topology.supply_meters(tk, area)
        if not supply_meters:
            return True
        end = start + SLOT
        waited = self.data_time(tk) >= end + self.config.balance_grace_s
        supplies = [self._energy(conn, tk, m, start) for m in sorted(supply_meters)]
        if any(s is None for s in supplies):
            return waited  # without the supply meter there is no balance
        customers = {m: self._energy(conn, tk, m, start) for m in sorted(self.topology.customers(tk, area))}
        if any(v is None for v in customers.values()) and not waited:
            return False
        supply = balance_mod.MeterEnergy(
            sum(s.consumed for s in supplies if s), sum(s.produced for s in supplies if s),
            any(s.estimated for s in supplies if s))
        fallback = {m: f for m, v in customers.items() if v is None
                    for f in [self._recent_mean(conn, tk, m, start)] if f is not None}
        result = balance_mod.energy_balance(supply, customers, fallback)
        if ":Feeder:" in area:
            substation = next(iter(self.topology.related(tk, area, "refSubstation")), None)
            feeder: str | None = area
        else:
            substation, feeder = area, None
        if substation is None:
            return True
        body = json.dumps(result.__dict__, sort_keys=True)
        old = conn.execute("SELECT body FROM balances WHERE tk=? AND area=? AND start=?", (tk, area, start)).fetchone()
        if old and old[0] == body:
            return True
        conn.execute("INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?, ?)", (tk, area, start, end, body))
        self.store.enqueue(conn, tk, [balance_entity(area, substation, feeder, start, end, result)])
        return True

    # -- district heating ---------------------------------------------------------------------------------
    def delta_t(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        end = start + SLOT
        _, last_t = self._meter(tk, e)
        if last_t < end:
            return False
        forward = dict(self.store.series(tk, e, "t_f", start, end))
        back = dict(self.store.series(tk, e, "t_r", start, end))
        flows = dict(self.store.series(tk, e, "h_flow", start, end))
        samples = [(forward[t], back[t], flows.get(t)) for t in sorted(forward) if t in back]
        if not samples:
            samples = [(v, 0.0, flows.get(t)) for t, v in self.store.series(tk, e, "dt", start, end)]
        value = heat.interval_delta_t(samples)
        if value is None:
            return True
        conn.execute("INSERT OR REPLACE INTO heat_intervals VALUES (?, ?, ?, ?, ?)", (tk, e, start, end, value))
        window = conn.execute("SELECT start, end, dt FROM heat_intervals WHERE tk=? AND e=? AND start>=? AND "
                              "start<=? ORDER BY start", (tk, e, start - 2 * 86400.0, start)).fetchall()
        alarms = heat.low_delta_t_alarms([(float(a), float(b), float(c)) for a, b, c in window],
                                         self.config.low_delta_t_k, self.config.low_delta_t_intervals)
        for alarm in alarms:
            self._alarm(conn, tk, "lowDeltaT", "lowDeltaT", e, alarm.start, alarm.end, alarm.raised_at,
                        "temperatureDifference",
                        f"delta T below {self.config.low_delta_t_k} K for {len(alarm.values)} intervals",
                        [(alarm.raised_at, min(alarm.values), "LOWER", self.config.low_delta_t_k)])
        return True

    def peak(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        day = local_date(start + 1.0, self.config.timezone)
        begin, end = day_bounds(day, self.config.timezone)
        if self._meter(tk, e)[1] < end:
            return False  # the day is not over yet
        powers = [v for _, v in self.store.series(tk, e, "h_p", begin, end)]
        powers += [v for _, v in self.store.series(tk, e, "h_pk", begin, end)]
        building = self.topology.building(tk, e)
        contracted = None
        for holder in [building, e]:
            if holder is None:
                continue
            for name in ("contractedHeatPower", "contractedPower"):
                value = self.store.prop(tk, holder, name)
                if isinstance(value, int | float) and contracted is None:
                    contracted = float(value)
        check = heat.peak_against_contract(powers, contracted)
        if check is None:
            return True
        conn.execute("INSERT OR REPLACE INTO heat_daily VALUES (?, ?, ?, ?, ?)",
                     (tk, e, day.isoformat(), check.peak_kw, contracted))
        if check.exceeded and contracted is not None:
            self._alarm(conn, tk, "peakPower", "other", e, begin, end, end, "thermalPower",
                        f"peak {check.peak_kw:.1f} kW above the contracted {contracted:.1f} kW",
                        [(begin, check.peak_kw, "UPPER", contracted)], key=day.isoformat())
        return True

    # -- water ----------------------------------------------------------------------------------------------
    def night(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        day = local_date(start + 1.0, self.config.timezone)
        moment = local(start + 1.0, self.config.timezone)
        w0 = moment.replace(hour=self.config.night_start_hour, minute=0, second=0, microsecond=0).timestamp()
        w1 = moment.replace(hour=self.config.night_end_hour, minute=0, second=0, microsecond=0).timestamp()
        _, last_t = self._meter(tk, e)
        if last_t < w1:
            return False  # the night is not over yet
        flows = [(t, v * 1000.0) for t, v in self.store.series(tk, e, "w_flow", w0, w1)]
        volumes = [p for p in self.store.points(tk, e, "w_vol", w0, w1) if w0 <= p[0] <= w1]
        minimum = water.night_minimum_flow(flows, volumes)
        if minimum is None:
            return True
        conn.execute("INSERT OR REPLACE INTO water_nights VALUES (?, ?, ?, ?)", (tk, e, day.isoformat(), minimum))
        since = (day - timedelta(days=14)).isoformat()
        rows = conn.execute("SELECT night, min_lph FROM water_nights WHERE tk=? AND e=? AND night>=? AND night<=?",
                            (tk, e, since, day.isoformat())).fetchall()
        minima = {date.fromisoformat(n): float(v) for n, v in rows}
        suspicion = water.leak_suspicion(minima, self.config.leak_threshold_lph, self.config.leak_nights)
        if suspicion is not None:
            first = day_bounds(suspicion.first_night, self.config.timezone)[0]
            flagged_day = local(day_bounds(suspicion.flagged_night, self.config.timezone)[0], self.config.timezone)
            detected = flagged_day.replace(hour=self.config.night_end_hour).timestamp()
            breaches = [(day_bounds(suspicion.first_night + timedelta(days=i), self.config.timezone)[0], v, "UPPER",
                         self.config.leak_threshold_lph) for i, v in enumerate(suspicion.minima_lph)]
            self._alarm(conn, tk, "leak", "leak", e, first, None, detected, "flow",
                        f"night minimum flow above {self.config.leak_threshold_lph} l/h for "
                        f"{self.config.leak_nights} nights", breaches, key=suspicion.first_night.isoformat())
        return True

    def backflow(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        begin, end = period_of(start + 1.0, "P1D", self.config.timezone)
        found = water.backflow(self.store.series(tk, e, "w_flow", begin, end),
                               self.store.points(tk, e, "w_rev", begin, end))
        if found is not None:
            t, amount, unit = found
            day = local_date(begin + 1.0, self.config.timezone).isoformat()
            self._alarm(conn, tk, "backflow", "backflow", e, t, None, t, "flow" if unit == "l/h" else "backflowVolume",
                        f"backflow of {amount:.1f} {unit}", [(t, amount, "UPPER", 0.0)], key=day)
        return True

    # -- outages ----------------------------------------------------------------------------------------------
    def meter_outage(self, conn: sqlite3.Connection, tk: str, e: str, start: float) -> bool:
        rows = conn.execute("SELECT q, t, v FROM readings WHERE s=? AND q LIKE 'supply:%'",
                            (self.store.sid(tk, e),)).fetchall()
        intervals = outages.outage_intervals(e, [(float(t), q[7:], bool(v)) for q, t, v in rows])
        area = self.topology.outage_area(tk, e)
        old_areas = {r[0] for r in conn.execute("SELECT DISTINCT area FROM meter_outages WHERE tk=? AND e=?", (tk, e))}
        conn.execute("DELETE FROM meter_outages WHERE tk=? AND e=?", (tk, e))
        conn.executemany("INSERT OR REPLACE INTO meter_outages VALUES (?, ?, ?, ?, ?, ?)",
                         [(tk, e, i.phase, i.start, i.end, area) for i in intervals])
        for affected in old_areas | {area}:
            self._mark(conn, tk, "area_out", affected, 0.0)
        return True

    def _customers(self, tk: str, area: str, meter: str) -> int:
        if meter in self.topology.supply_meters(tk, area) and meter != area:
            declared = self.store.prop(tk, area, "customersCount")
            if isinstance(declared, int | float):
                return int(declared)
            return max(len(self.topology.customers(tk, area)), 1)
        building = self.topology.building(tk, meter)
        declared = self.store.prop(tk, building, "customersCount") if building else None
        if not isinstance(declared, int | float) or declared <= 0 or building is None:
            return 1
        # the building's customers are shared by its customer meters (those in a substation's or feeder's
        # balance): one meter for the whole building stands for all of them, one per household for one each
        sharing = [m for m in self.topology.members(tk, building, "refBuilding")
                   if self._meter(tk, m)[0] == "electricity" and self.topology.areas(tk, m)]
        return max(1, round(declared / max(1, len(sharing))))

    def area_outage(self, conn: sqlite3.Connection, tk: str, area: str, start: float) -> bool:
        rows = conn.execute("SELECT e, phase, start, end FROM meter_outages WHERE tk=? AND area=?",
                            (tk, area)).fetchall()
        intervals = [outages.Interval(e, p, float(s), None if t is None else float(t)) for e, p, s, t in rows]
        customers = {i.meter: self._customers(tk, area, i.meter) for i in intervals}
        events = outages.area_outages(intervals, customers)
        keep = set()
        for event in events:
            keep.add(event.start)
            body = json.dumps({"start": event.start, "end": event.end, "meters": list(event.meters),
                               "phases": list(event.phases), "customers": event.customers})
            old = conn.execute("SELECT body FROM outages WHERE tk=? AND area=? AND start=?",
                               (tk, area, event.start)).fetchone()
            if old and old[0] == body:
                continue
            conn.execute("INSERT OR REPLACE INTO outages VALUES (?, ?, ?, ?, ?)",
                         (tk, area, event.start, event.end, body))
            issued = event.end if event.end is not None else event.start
            self.store.enqueue(conn, tk, [outage_entity(area, event, issued)])
        for (stale,) in conn.execute("SELECT start FROM outages WHERE tk=? AND area=?", (tk, area)).fetchall():
            if stale not in keep:
                conn.execute("DELETE FROM outages WHERE tk=? AND area=? AND start=?", (tk, area, stale))
        return True

    # -- alarms -----------------------------------------------------------------------------------------------
    def _alarm(self, conn: sqlite3.Connection, tk: str, name: str, anomaly_type: str, e: str, start: float,
               end: float | None, detected: float, prop: str, description: str,
               breaches: list[tuple[float, float, str, float]], key: str | None = None) -> None:
        alarm_key = key or str(int(start))
        alarm_id = f"{name}:{e}:{alarm_key}"
        body = json.dumps({"kind": name, "meter": e, "start": iso(start), "end": iso(end) if end else None,
                           "detected": iso(detected), "description": description})
        old = conn.execute("SELECT body FROM alarms WHERE tk=? AND id=?", (tk, alarm_id)).fetchone()
        if old and old[0] == body:
            return
        conn.execute("INSERT OR REPLACE INTO alarms VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (tk, alarm_id, name, e, start, end, body))
        self.store.enqueue(conn, tk, [anomaly_entity(name, anomaly_type, e, alarm_key, detected, prop, description,
                                                     breaches)])

    def silence(self, now: float | None = None) -> None:
        """Raise a silence alarm for a meter the tenant's data time has left behind, end it when it reports.

        Data time, not the wall clock: a meter is silent when the newest observation time seen in its tenant
        (scope) is more than its limit past the meter's last observation, so a replay, a backfill or a
        simulation at any speed gives the alarms the data says. The limit is ``silence_after_s``, or two of
        the meter's own reporting intervals if that is longer (an hourly meter is not silent after 15 min).
        The alarm starts at the meter's last observation (its id ``silence:<meter>:<since epoch>``) and ends at
        its first observation after that. Only when the whole tenant is quiet (no new observation has arrived
        for ``silence_after_s`` of wall clock: a dead concentrator or agent) does the wall clock stand in: the
        data time then runs on from the newest observation at wall-clock speed. A silence that opened and
        closed between two checks (a fast replay) is found as the gap between two observations. A meter whose
        readings are still arriving (``SILENCE_GRACE_S`` of wall clock) is late, not silent: at 25,000x one
        transport lagging another by 40 ms is 900 s of data time."""
        now = now if now is not None else time.time()
        # only meters that delivered since the previous check (their gaps) or that are behind the data time by
        # more than the shortest limit (silence candidates, open alarms) can change anything: the others (all
        # but a few of a large fleet) are left in SQLite; the margin covers a reading stamped during a check
        since = min(self.last_silence_check, now) - SILENCE_CHECK_MARGIN_S
        self.last_silence_check = now
        after = self.config.silence_after_s
        tenants = self.store.query("SELECT tk, max(last_t), max(last_wall) FROM meters GROUP BY tk")
        with self.store.transaction() as conn:
            if self._silence_seen is None:
                self._silence_seen = {(tk, e): float(t) for tk, e, t in conn.execute("SELECT tk, e, t FROM "
                                                                                     "silence_seen")}
            for tk, data_t, arrived in tenants:
                clock = float(data_t)
                if arrived is not None and now - float(arrived) > after:
                    clock += now - float(arrived)  # nothing arrives at all: the wall clock stands in
                opened = {e: (alarm_id, float(begin), body) for alarm_id, e, begin, body in conn.execute(
                    "SELECT id, e, start, body FROM alarms WHERE tk=? AND kind='silence' AND end IS NULL", (tk,))}
                for e, first_t, last_t, last_wall in conn.execute(
                        "SELECT e, first_t, last_t, last_wall FROM meters WHERE tk=? AND (last_wall >= ? OR "
                        "last_t < ?)", (tk, since, clock - after)).fetchall():
                    # still delivering (in wall time): late, not silent; its gaps will tell
                    arriving = now - float(last_wall) <= min(SILENCE_GRACE_S, after)
                    self._silence_meter(conn, tk, e, float(first_t), float(last_t), clock, opened.get(e), arriving)
            if now - self._silence_flushed >= SILENCE_FLUSH_S:  # a restart rescans from older marks: harmless
                self._silence_flushed = now
                conn.executemany("INSERT OR REPLACE INTO silence_seen VALUES (?, ?, ?)",
                                 [(tk, e, t) for (tk, e), t in self._silence_seen.items()])

    def _silence_limit(self, conn: sqlite3.Connection, s: int | None) -> float:
        """``silence_after_s``, or two median reporting intervals (last 50 observations) if longer."""
        recent = conn.execute("SELECT t FROM readings WHERE s=? AND q='_' ORDER BY t DESC LIMIT 50", (s,)).fetchall()
        interval = typical_interval(sorted((float(t), 0.0) for (t,) in recent), default=0.0)
        return max(self.config.silence_after_s, 2.0 * interval)

    def _silence_meter(self, conn: sqlite3.Connection, tk: str, e: str, first_t: float, last_t: float,
                       clock: float, opened: tuple[str, float, str] | None, arriving: bool) -> None:
        assert self._silence_seen is not None
        # observations up to ``seen`` were checked for gaps (a meter new to the check: from its first one,
        # at most a day back)
        seen = self._silence_seen.get((tk, e), max(first_t, last_t - SILENCE_LOOKBACK_S))
        self._silence_seen[(tk, e)] = last_t
        after = self.config.silence_after_s
        if last_t - seen <= after and (
                (opened is None and clock - last_t <= after) or (opened is not None and last_t <= opened[1])):
            return  # the common cases, without a query: not silent and no long gap, or still silent as alarmed
        s = self.store.sid(tk, e)
        cached = self._silence_limits.get((tk, e))
        if cached is not None and cached[0] == last_t:
            limit = cached[1]  # no new observation since it was computed: checked every second, queried once
        else:
            limit = self._silence_limit(conn, s)
            self._silence_limits[(tk, e)] = (last_t, limit)
        if opened is not None and last_t > opened[1]:  # it reported again: the silence ends at that reading
            alarm_id, begin, body = opened
            row = conn.execute("SELECT min(t) FROM readings WHERE s=? AND q='_' AND t>?", (s, begin)).fetchone()
            back = float(row[0]) if row and row[0] is not None else last_t
            document = json.loads(body)
            document["end"] = iso(back)
            conn.execute("UPDATE alarms SET end=?, body=? WHERE tk=? AND id=?",
                         (back, json.dumps(document), tk, alarm_id))
        if last_t - seen > limit:  # silences that opened and closed since the last check
            times = [float(t) for (t,) in conn.execute("SELECT t FROM readings WHERE s=? AND q='_' AND t>=? "
                                                       "ORDER BY t", (s, seen))]
            for a, b in itertools.pairwise(times):
                if b - a > limit:
                    self._raise_silence(conn, tk, e, a, b, limit)
        if clock - last_t > limit and not arriving:
            self._raise_silence(conn, tk, e, last_t, None, limit)

    def _raise_silence(self, conn: sqlite3.Connection, tk: str, e: str, since: float, back: float | None,
                       limit: float) -> None:
        """One alarm per silence (keyed by its start); detected when the data time passed start + limit."""
        if conn.execute("SELECT 1 FROM alarms WHERE tk=? AND id=?", (tk, f"silence:{e}:{int(since)}")).fetchone():
            return
        self._alarm(conn, tk, "silence", "silence", e, since, back, since + limit, "TimeInstant",
                    f"no reading for more than {int(limit)} s of data time after {iso(since)}", [])
