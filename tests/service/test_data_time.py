"""Silence on data time and meter replacements near a power of ten, through the real ``flexmeter service``.

The readings are days old and posted in seconds (a replay, or a simulation far faster than real time): the
alarms and consumptions must be those the readings' own times say, whatever the wall clock does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from flexmeter.service.periods import iso
from flexmeter.service.synthetic import heat_reading
from tests.service.conftest import service_process
from tests.service.test_events import meter_reading
from tests.service.test_http import post

T0 = 1_789_948_800.0  # 2026-09-21T00:00:00Z, two months before the wall clock of these tests' writing
PATH = "/turin"


def alarms(url: str, tenant: str, active: bool = False) -> dict[str, dict[str, Any]]:
    """The silence alarms: all of them, or the active ones only."""
    found = requests.get(f"{url}/v1/alarms", params={"active": "true" if active else "false"}, timeout=30,
                         headers={"Fiware-Service": tenant, "Fiware-ServicePath": PATH}).json()
    return {a["id"]: a for a in found if a["kind"] == "silence"}


def wait_alarms(url: str, tenant: str, count: int, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """The silence alarms once there are ``count`` (the check runs every second of wall time)."""
    deadline = time.monotonic() + timeout
    while True:
        found = alarms(url, tenant)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def meter(name: str) -> str:
    return f"urn:ngsi-ld:ACMeasurement:{name}"


def readings(name: str, times: list[float]) -> list[dict[str, Any]]:
    return [meter_reading(name, t, kwh=100.0 + (t - T0) / 3600.0) for t in times]


def test_silence_follows_the_data_time_not_the_wall_clock(tmp_path: Path, tenant: str) -> None:
    minute = [T0 + 60.0 * k for k in range(121)]  # two hours of data time, a reading a minute
    hourly = [T0 + 3600.0 * k for k in range(-3, 3)]
    with service_process(tmp_path, None) as service:
        # an hourly meter first (its history shows its interval), then the others in data-time order
        assert post(service.url, tenant, readings("H", hourly), PATH).status_code == 200
        quiet_c = [t for t in minute if not T0 + 1800.0 < t < T0 + 3600.0]  # C: 30 min without readings
        quiet_b = [t for t in minute if t <= T0 + 5400.0]                   # B: nothing after 1 h 30
        for lo in range(0, 121, 10):
            batch = [t for t in minute[lo:lo + 10]]
            entities = (readings("A", batch) + readings("C", [t for t in batch if t in quiet_c])
                        + readings("B", [t for t in batch if t in quiet_b]))
            assert post(service.url, tenant, entities, PATH).status_code == 200
        found = wait_alarms(service.url, tenant, 2)
        # seconds of wall time, hours of data time: C's gap and B's silence are found, on their data times
        assert sorted(found) == [f"silence:{meter('B')}:{int(T0 + 5400.0)}", f"silence:{meter('C')}:{int(T0 + 1800.0)}"]
        gap = found[f"silence:{meter('C')}:{int(T0 + 1800.0)}"]
        assert (gap["start"], gap["end"], gap["active"]) == (iso(T0 + 1800.0), iso(T0 + 3600.0), False)
        assert gap["detected"] == iso(T0 + 1800.0 + 900.0)  # when the data time passed the limit
        still = found[f"silence:{meter('B')}:{int(T0 + 5400.0)}"]
        assert still["active"] and still["end"] is None
        # A reported throughout; H reports hourly (its limit is two intervals): neither is silent

        # a replay of B's older readings (new to the service, older than its last) is no sign of life
        assert post(service.url, tenant, readings("B", [T0 - 600.0, T0 - 300.0]), PATH).json()["new"] == 2
        time.sleep(1.5)  # at least one silence check
        assert list(alarms(service.url, tenant, active=True)) == [f"silence:{meter('B')}:{int(T0 + 5400.0)}"]

        # B reports again: its silence ends at that reading's time, not at the wall clock's
        assert post(service.url, tenant, readings("B", [T0 + 7260.0]), PATH).status_code == 200
        deadline = time.monotonic() + 15.0
        while alarms(service.url, tenant, active=True) and time.monotonic() < deadline:
            time.sleep(0.3)
        ended = alarms(service.url, tenant)[f"silence:{meter('B')}:{int(T0 + 5400.0)}"]
        assert (ended["active"], ended["end"]) == (False, iso(T0 + 7260.0))
        assert len(alarms(service.url, tenant)) == 2


def test_a_whole_tenant_gone_quiet_falls_back_to_the_wall_clock(tmp_path: Path, tenant: str) -> None:
    with service_process(tmp_path, None, "--silence-after", "3") as service:
        times = [T0 + k for k in range(20)]  # a reading a second (limit: 3 s, or two intervals)
        assert post(service.url, tenant, readings("A", times) + readings("B", times), PATH).status_code == 200
        posted = time.monotonic()
        # data two months old, but it just arrived: nobody is silent while the tenant's data time stands still
        assert alarms(service.url, tenant) == {}
        assert time.monotonic() - posted < 3.0  # (the check above ran within the limit)
        # nothing more arrives: after 3 s of wall clock the data time runs on with it, and both go silent
        found = wait_alarms(service.url, tenant, 2)
        assert time.monotonic() - posted >= 3.0
        assert sorted(found) == [f"silence:{meter(m)}:{int(T0 + 19.0)}" for m in ("A", "B")]
        assert all(a["active"] and a["start"] == iso(T0 + 19.0) for a in found.values())
        # A reports again: its alarm ends at its reading (and the tenant's data time moves on from it)
        assert post(service.url, tenant, readings("A", [T0 + 60.0]), PATH).status_code == 200
        deadline = time.monotonic() + 15.0
        while len(alarms(service.url, tenant, active=True)) > 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert alarms(service.url, tenant)[f"silence:{meter('A')}:{int(T0 + 19.0)}"]["end"] == iso(T0 + 60.0)


def heat_meter(name: str, values: list[tuple[float, float]], started: float | None = None) -> list[dict[str, Any]]:
    """A heat meter's readings (time, kWh); ``started``: the ``dateEnergyMeteringStarted`` of the readings
    from that time on (the new meter's, as its entity would carry it)."""
    out = []
    for t, kwh in values:
        entity = heat_reading(name, t, 70.0, 40.0, kwh, 20.0)
        if started is not None and t >= started:
            entity["dateEnergyMeteringStarted"] = {"type": "DateTime", "value": iso(started)}
        out.append(entity)
    return out


def quarter_hours(url: str, tenant: str, name: str) -> list[dict[str, Any]]:
    response = requests.get(f"{url}/v1/meters/urn:ngsi-ld:SmartMeteringObservation:{name}/consumption",
                            params={"resolution": "PT15M", "fromDate": iso(T0), "toDate": iso(T0 + 86400.0)},
                            headers={"Fiware-Service": tenant, "Fiware-ServicePath": PATH}, timeout=30)
    periods: list[dict[str, Any]] = response.json()["periods"]
    return periods


def test_a_meter_replaced_near_a_power_of_ten_is_not_a_rollover(tmp_path: Path, tenant: str) -> None:
    q = 900.0
    # 5 kWh per 15 min. R: the old meter reads 99,950 kWh, its replacement 0.3 kWh 15 min later (no signal)
    old = [(T0 + q * k, 99_920.0 + 5.0 * k) for k in range(7)]            # ... 99,950 at T0 + 1h30
    new = [(T0 + q * k, 0.3 + 5.0 * (k - 7)) for k in range(7, 12)]
    # S: a wrap the rate would allow (99,998 -> 1), but the new meter's entity says it started in between
    s_old = [(T0 + q * k, 99_968.0 + 5.0 * k) for k in range(7)]         # ... 99,998
    s_new = [(T0 + q * k, 1.0 + 5.0 * (k - 7)) for k in range(7, 12)]
    # W: the same readings without the signal: a genuine roll-over, counted exactly
    with service_process(tmp_path, None) as service:
        entities = (heat_meter("R", old + new) + heat_meter("S", s_old + s_new, started=T0 + 6.5 * q)
                    + heat_meter("W", s_old + s_new))
        assert post(service.url, tenant, entities, PATH).status_code == 200
        replaced, signalled, wrapped = (quarter_hours(service.url, tenant, m) for m in ("R", "S", "W"))
    assert len(replaced) == len(signalled) == len(wrapped) == 11
    across = 6  # the quarter hour from T0 + 1h30 to 1h45, across the change of register
    for periods in (replaced, signalled, wrapped):
        assert all(p["consumption"] == 5.0 and not p["estimated"] for i, p in enumerate(periods) if i != across)
    # R: not 50.3 kWh of "roll-over" but the meter's rate, flagged as an estimate
    assert (replaced[across]["consumption"], replaced[across]["estimated"]) == (5.0, True)
    # S: the signal wins over a plausible wrap (3 kWh if it were one): the rate, flagged
    assert (signalled[across]["consumption"], signalled[across]["estimated"]) == (5.0, True)
    # W: a genuine roll-over is still exact and not flagged
    assert (wrapped[across]["consumption"], wrapped[across]["estimated"]) == (3.0, False)
