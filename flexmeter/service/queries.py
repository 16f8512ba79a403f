"""Read models for the REST API and the dashboard: plain dicts from the store, ISO times, no floats noise."""

from __future__ import annotations

import itertools
import json
from datetime import date
from typing import Any

from flexmeter.service.analytics import nialm
from flexmeter.service.analytics.registers import typical_interval
from flexmeter.service.config import ServiceConfig
from flexmeter.service.periods import day_bounds, iso, local_date
from flexmeter.service.store import Store

Json = dict[str, Any]


def _r(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(float(value), places)


class Queries:
    def __init__(self, store: Store, config: ServiceConfig) -> None:
        self.store = store
        self.config = config

    def meters(self, tk: str) -> list[Json]:
        rows = self.store.query("SELECT e, type, vector, first_t, last_t, n FROM meters WHERE tk=? ORDER BY e", (tk,))
        return [{"id": e, "type": t, "vector": v, "firstObservation": iso(f), "lastObservation": iso(last),
                 "readings": n} for e, t, v, f, last, n in rows]

    def profile(self, tk: str, meter: str, resolution: str, t0: float, t1: float) -> list[Json]:
        rows = self.store.query(
            "SELECT start, end, vector, consumption, production, estimated, completeness, complete FROM profiles "
            "WHERE tk=? AND e=? AND res=? AND start>=? AND start<? ORDER BY start", (tk, meter, resolution, t0, t1))
        unit = {"water": "MTQ", "gas": "MTQ"}
        result = []
        for start, end, vector, consumption, production, estimated, share, complete in rows:
            scale = 0.001 if vector in unit else 1.0
            result.append({"from": iso(start), "to": iso(end), "vector": vector,
                           "consumption": _r(consumption * scale, 6), "unit": unit.get(vector, "KWH"),
                           "production": _r(production), "estimated": bool(estimated),
                           "completeness": _r(share, 3), "complete": bool(complete)})
        return result

    def series(self, tk: str, meter: str, quantity: str, t0: float, t1: float, points: int = 1500) -> list[Json]:
        rows = self.store.series(tk, meter, quantity, t0, t1)
        step = max(1, len(rows) // points)
        return [{"t": iso(t), "v": _r(v, 3)} for t, v in rows[::step]]

    def areas(self, tk: str) -> list[str]:
        return [r[0] for r in self.store.query("SELECT DISTINCT area FROM balances WHERE tk=? ORDER BY area", (tk,))]

    def balances(self, tk: str, area: str | None, t0: float, t1: float) -> list[Json]:
        sql = "SELECT area, start, end, body FROM balances WHERE tk=? AND start>=? AND start<?"
        params: list[Any] = [tk, t0, t1]
        if area:
            sql += " AND area=?"
            params.append(area)
        result = []
        for name, start, end, body in self.store.query(sql + " ORDER BY area, start", params):
            data = json.loads(body)
            result.append({"area": name, "from": iso(start), "to": iso(end),
                           "energyDelivered": _r(data["delivered"]), "energyConsumed": _r(data["consumed"]),
                           "energyProduced": _r(data["produced"]), "losses": _r(data["losses"]),
                           "lossesPercent": _r(data["losses_percent"], 3), "completeness": _r(data["completeness"], 3),
                           "metersExpected": data["meters_expected"], "metersReported": data["meters_reported"],
                           "estimated": data["estimated"]})
        return result

    def alarms(self, tk: str, active_only: bool) -> list[Json]:
        result: list[Json] = []
        for area, start, end, body in self.store.query("SELECT area, start, end, body FROM outages WHERE tk=? "
                                                       "ORDER BY start DESC", (tk,)):
            if active_only and end is not None:
                continue
            data = json.loads(body)
            result.append({"kind": "powerOutage", "source": area, "start": iso(start),
                           "end": iso(end) if end is not None else None, "active": end is None,
                           "customersAffected": data["customers"], "meters": data["meters"], "phases": data["phases"],
                           "durationSeconds": None if end is None else round(end - start)})
        for alarm_id, kind, meter, start, end, body in self.store.query(
                "SELECT id, kind, e, start, end, body FROM alarms WHERE tk=? ORDER BY start DESC", (tk,)):
            if active_only and end is not None:
                continue
            data = json.loads(body)
            result.append({"id": alarm_id, "kind": kind, "source": meter, "start": iso(start),
                           "end": iso(end) if end is not None else None, "active": end is None,
                           "detected": data.get("detected"), "description": data.get("description")})
        return result

    def completeness(self, tk: str, day: date) -> Json:
        day_text = day.isoformat()
        begin, end = day_bounds(day, self.config.timezone)
        meters = []
        received_total = expected_total = 0.0
        silent_ids = {r[0] for r in self.store.query("SELECT e FROM alarms WHERE tk=? AND kind='silence' AND end IS "
                                                     "NULL", (tk,))}
        for e, vector, first_t, last_t in self.store.query("SELECT e, vector, first_t, last_t FROM meters WHERE tk=? "
                                                           "ORDER BY e", (tk,)):
            count_row = self.store.one("SELECT n FROM daily_counts WHERE tk=? AND e=? AND day=?", (tk, e, day_text))
            received = int(count_row[0]) if count_row else 0
            recent = self.store.query("SELECT t, v FROM readings WHERE s=? AND q='_' ORDER BY t DESC LIMIT 50",
                                      (self.store.sid(tk, e),))
            interval = typical_interval(sorted((float(t), float(v)) for t, v in recent), default=900.0)
            span_start, span_end = max(begin, float(first_t)), min(end, max(float(last_t), begin))
            expected = max((span_end - span_start) / interval + 1, 0.0) if span_end >= span_start else 0.0
            expected = max(expected, float(received))
            received_total += received
            expected_total += expected
            meters.append({"id": e, "vector": vector, "received": received, "expected": round(expected),
                           "completeness": _r(received / expected, 4) if expected else None,
                           "intervalSeconds": _r(interval, 1), "lastObservation": iso(float(last_t)),
                           "silent": e in silent_ids})
        return {"day": day_text, "received": int(received_total), "expected": round(expected_total),
                "completeness": _r(received_total / expected_total, 4) if expected_total else None,
                "silentMeters": sorted(silent_ids), "meters": meters}

    def heat(self, tk: str, meter: str | None, t0: float, t1: float) -> Json:
        sql = "SELECT e, start, dt FROM heat_intervals WHERE tk=? AND start>=? AND start<?"
        params: list[Any] = [tk, t0, t1]
        if meter:
            sql += " AND e=?"
            params.append(meter)
        intervals = [{"meter": e, "from": iso(s), "deltaT": _r(dt, 3)} for e, s, dt in
                     self.store.query(sql + " ORDER BY e, start", params)]
        first, last = local_date(t0, self.config.timezone).isoformat(), local_date(t1, self.config.timezone).isoformat()
        daily = [{"meter": e, "day": d, "peakPower": _r(p, 3), "contractedPower": _r(c, 3),
                  "exceeded": c is not None and p > c}
                 for e, d, p, c in self.store.query("SELECT e, day, peak, contracted FROM heat_daily WHERE tk=? AND "
                                                    "day>=? AND day<=? ORDER BY e, day", (tk, first, last))
                 if meter is None or e == meter]
        return {"intervals": intervals, "daily": daily}

    def water(self, tk: str, meter: str | None) -> list[Json]:
        rows = self.store.query("SELECT e, night, min_lph FROM water_nights WHERE tk=? ORDER BY e, night", (tk,))
        return [{"meter": e, "night": n, "minimumFlow": _r(v, 3), "unit": "l/h",
                 "aboveThreshold": v > self.config.leak_threshold_lph} for e, n, v in rows if meter in (None, e)]

    def nialm(self, tk: str, meter: str, day: date) -> Json:
        begin, end = day_bounds(day, self.config.timezone)
        powers = self.store.series(tk, meter, "p", begin, end)
        reactive = dict(self.store.series(tk, meter, "q", begin, end))
        samples = [(t, p, reactive.get(t, 0.0)) for t, p in powers]
        events = nialm.switching_events(samples, self.config.nialm_min_step_w)
        last = samples[-1][0] if samples else begin
        groups = nialm.signatures(events, last, self.config.nialm_tolerance)
        total = sum((tb - ta) * pa for (ta, pa, _), (tb, _, _) in itertools.pairwise(samples)) / 3.6e6
        explained = sum(s.energy_kwh for s in groups)
        return {"meter": meter, "day": day.isoformat(), "samples": len(samples), "events": len(events),
                "energyTotal": _r(total), "energyExplained": _r(explained), "unit": "KWH",
                "signatures": [{"name": s.name, "deltaP": s.delta_p, "deltaQ": s.delta_q, "switchOns": s.switch_ons,
                                "energy": _r(s.energy_kwh), "onSeconds": _r(s.on_seconds, 1)} for s in groups]}

    def overview(self, tk: str) -> Json:
        rows = self.store.query("SELECT vector, count(*) FROM meters WHERE tk=? GROUP BY vector", (tk,))
        counts = {v or "other": n for v, n in rows}
        readings = self.store.one("SELECT sum(n), max(last_t) FROM meters WHERE tk=?", (tk,))
        active = [a for a in self.alarms(tk, True)]
        latest = self.store.query("SELECT area, body FROM balances WHERE tk=? AND start = (SELECT max(start) FROM "
                                  "balances b WHERE b.tk=balances.tk AND b.area=balances.area)", (tk,))
        return {"meters": counts, "readings": int(readings[0] or 0) if readings else 0,
                "lastObservation": iso(float(readings[1])) if readings and readings[1] else None,
                "activeAlarms": len(active),
                "latestLosses": {a: _r(json.loads(b)["losses_percent"], 3) for a, b in latest}}
